"""``flowhouse init``: the scaffold, the project found from the working folder, and the store's
own segments, attributes and vars known to ``validate`` without a warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.core.errors import ConfigError
from flowhouse.core.paths import FLOWS
from flowhouse.core.project import Project, current, locate, using
from flowhouse.flows.settings import load_settings
from flowhouse.scaffolding import init_project, project_name


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture
def project(tmp_path: Path) -> Path:
    init_project(tmp_path / "shop", title="Mugs & Co")
    return tmp_path / "shop"


def test_init_writes_a_project_that_validates(project: Path) -> None:
    for path in ("dbt_project.yml", "packages.yml", "profiles.yml", "definitions.py", "README.md",
                 ".gitignore", "flow.schema.json", "flows/_settings.yml", "flows/welcome.yml",
                 "flows/repeat_thanks.yml", "models/inputs/store_events.sql",
                 "models/segments/seg_repeat_buyers.yml", "macros/generate_schema_name.sql"):  # fmt: skip
        assert (project / path).is_file(), path
    text = (project / "dbt_project.yml").read_text()
    assert "name: shop" in text and "__NAME__" not in text
    assert "Mugs & Co" in (project / "flows" / "_settings.yml").read_text()
    code, out = run("--project", str(project), "validate")
    assert code == 0, out
    assert "2 flow and sync file(s) checked, 0 with problems" in out


def test_init_never_overwrites_and_names_must_be_usable(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists and is not empty"):
        init_project(tmp_path / "taken")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    assert project_name(tmp_path / "My Shop-2") == "my_shop_2"
    assert project_name(tmp_path / "2shop") == "store_2shop"
    with pytest.raises(ConfigError, match="not a usable project name"):
        project_name(tmp_path / "flowhouse")
    code, out = run("init", str(tmp_path / "taken"))
    assert code == 1 and "Error:" in out and "Traceback" not in out


def test_the_project_is_found_from_the_working_folder(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWHOUSE_PROJECT", raising=False)
    monkeypatch.chdir(project / "flows" / "templates")
    found = locate()
    assert found.own and found.dbt_dir == project.resolve()
    assert found.flows_dir == project.resolve() / "flows"
    monkeypatch.chdir(project.parent)
    assert locate() == Project.example()
    assert Project.example().flows_dir == FLOWS


def test_a_folder_that_is_no_project_is_a_clear_error(tmp_path: Path) -> None:
    code, out = run("--project", str(tmp_path), "validate")
    assert code == 2
    assert "is not a flowhouse project: no dbt_project.yml and no flows" in out


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("segment: repeat_buyers", "segment: repeat_buyer"),
         ("repeat_thanks.yml:11: audience.segment:", "repeat_buyers,", "(got 'repeat_buyer')")),
        (("customer.store_is_wholesale", "customer.store_is_wholesal"),
         ("welcome.yml:", "audience.where", "store_is_wholesal", "store_is_wholesale")),
    ],
)  # fmt: skip
def test_the_stores_own_segments_and_attributes_are_checked(
    project: Path, edit: tuple[str, str], expected: tuple[str, ...]
) -> None:
    for name in ("welcome.yml", "repeat_thanks.yml"):
        path = project / "flows" / name
        path.write_text(path.read_text().replace(*edit))
    code, out = run("--project", str(project), "validate")
    assert code == 1
    for part in expected:
        assert part in out, out
    assert "1 problem(s)" in out


def test_the_store_time_zone_comes_from_the_dbt_project_unless_the_settings_set_it(
    project: Path,
) -> None:
    dbt = project / "dbt_project.yml"
    dbt.write_text(dbt.read_text().replace("store_timezone: UTC", "store_timezone: Europe/Berlin"))
    with using(Project.at(project)):
        assert current().own
        assert load_settings(project / "flows").store.timezone == "Europe/Berlin"
        settings = project / "flows" / "_settings.yml"
        settings.write_text(
            settings.read_text().replace("store:\n", "store:\n  timezone: Asia/Tokyo\n")
        )
        assert load_settings(project / "flows").store.timezone == "Asia/Tokyo"
        assert load_settings(project / "flows").dbt_vars()["store_timezone"] == "Asia/Tokyo"


def test_a_store_attribute_named_like_one_of_flowhouses_is_a_located_error(project: Path) -> None:
    yml = project / "models" / "attributes" / "store_customer_extras.yml"
    yml.write_text(yml.read_text().replace("name: store_tags", "name: email"))
    code, out = run("--project", str(project), "validate")
    assert code == 1
    assert "store_customer_extras.yml: store_customer_extras.columns" in out
    assert "column 'email', which customer attributes already have" in out
