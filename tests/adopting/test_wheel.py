"""The wheel is all a store needs: built from this repository, installed into a fresh virtual
environment outside it, it runs the example store and a store's own project from any folder, and
puts no top-level name but ``flowhouse`` on the path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from flowhouse.core.paths import CHECKOUT

pytestmark = pytest.mark.slow

SHOP = """
create schema shop;
create table shop.customers (id integer, email varchar, phone varchar, first_name varchar,
    created_at timestamp, updated_at timestamp, accepts_email_marketing boolean,
    accepts_sms_marketing boolean, country_code varchar, tags varchar);
insert into shop.customers values
    (1, 'ann@example.com', null, 'Ann', '2026-10-01 10:00', '2026-10-01 10:00', true, false, 'US', '');
create table shop.orders (id integer, customer_id integer, created_at timestamp,
    synced_at timestamp, total_price decimal(12, 2), currency varchar, financial_status varchar);
insert into shop.orders values (10, 1, '2026-10-02 10:00', '2026-10-02 10:05', 50, 'USD', 'paid');
create table shop.products (sku varchar, title varchar, handle varchar, image_src varchar,
    product_type varchar, price decimal(12, 2), inventory_quantity integer, updated_at timestamp);
"""


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError("the installed fake provider did not start")


def test_the_wheel_installs_and_runs_outside_the_repository(tmp_path: Path) -> None:
    assert CHECKOUT is not None
    dist, venv, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "work"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FLOWHOUSE_"))}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(CHECKOUT)],
         tmp_path, env)  # fmt: skip
    [wheel] = dist.glob("flowhouse-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {
        "flowhouse",
        wheel.name.split("-py3")[0] + ".dist-info",
    }
    shipped = {Path(n).suffix for n in names if n.startswith("flowhouse/dbt_project/")}
    assert {".sql", ".yml"} <= shipped
    assert any(n.startswith("flowhouse/flows/library/templates/") for n in names)
    assert any(n.startswith("flowhouse/specs/") and n.endswith(".json") for n in names)

    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    _run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], tmp_path, env)
    work.mkdir()
    python, fh = str(venv / "bin" / "python"), str(venv / "bin" / "flowhouse")
    where = _run([python, "-c", "import flowhouse, importlib.util as u; print(flowhouse.__file__);"
                  " print([n for n in ('activation', 'flows', 'orchestration') if u.find_spec(n)])"],
                 work, env)  # fmt: skip
    assert str(venv) in where.splitlines()[0] and where.splitlines()[1] == "[]"

    # the example store, from a folder that is no project
    wh = ["--warehouse", str(work / "store.duckdb")]
    _run([fh, "generate", *wh, "--customers", "300", "--days", "10"], work, env)
    _run([fh, "build", *wh, "--skip-tests"], work, env)
    assert "0 problem(s)" in _run([fh, "validate"], work, env)
    port = _free_port()
    fake = subprocess.Popen([fh, "fake-provider", "--port", str(port)], cwd=work, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_for(port, fake)
        ticked = _run([fh, "tick", *wh, "--provider-url", f"http://127.0.0.1:{port}"], work, env)
    finally:
        fake.terminate()
        fake.wait(timeout=30)
    assert "send at" in ticked and " failed" in ticked
    _run([fh, "report", *wh, "--out", str(work / "report")], work, env)
    assert (work / "report" / "index.html").stat().st_size > 10_000

    # a store's own project, its dbt project reading flowhouse's package from the install
    _run([fh, "init", "shop"], work, env)
    project = work / "shop"
    _run([python, "-c", f"import duckdb; duckdb.connect('warehouse.duckdb').execute({SHOP!r})"],
         project, env)  # fmt: skip
    assert "0 problem(s)" in _run([fh, "validate"], project, env)
    built = _run([fh, "build", "--skip-tests"], project, env)
    assert "models" in built
    installed = (project / "dbt_packages" / "flowhouse").resolve()
    assert installed.is_relative_to(venv) and (installed / "dbt_project.yml").is_file()
