"""Render an HTML file in headless Chromium (Debian's ``chromium``) and return what a person would
see: a PNG screenshot, and the DOM after the page's scripts ran.

    page = render(Path("report/index.html"), width=1400, height=2000)
    page.screenshot  # PNG bytes
    page.dom         # serialized DOM after load

``tests/support/chromium.sh`` installs the browser where it is missing; :func:`chromium` is None
when it is not installed (tests skip then).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--virtual-time-budget=10000",
)


@dataclass(frozen=True)
class Rendered:
    screenshot: bytes
    dom: str


def chromium() -> str | None:
    """The path of an installed Chromium, or None."""
    return next((p for b in BROWSERS if (p := shutil.which(b))), None)


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, capture_output=True, timeout=timeout, check=False)


def render(html: Path, width: int = 1400, height: int = 2000, timeout: float = 120) -> Rendered:
    """Screenshot `html` at `width` x `height` CSS pixels and dump its DOM after scripts ran."""
    browser = chromium()
    if browser is None:
        raise RuntimeError("chromium is not installed (tests/support/chromium.sh installs it)")
    url = html.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="report-browser-") as tmp:
        shot = Path(tmp) / "page.png"
        common = [
            browser,
            *FLAGS,
            f"--user-data-dir={tmp}/profile",
            f"--window-size={width},{height}",
        ]
        taken = _run([*common, f"--screenshot={shot}", url], timeout)
        if not shot.exists():
            raise RuntimeError(f"chromium took no screenshot: {taken.stderr.decode()[-2000:]}")
        dumped = _run([*common, "--dump-dom", url], timeout)
        if dumped.returncode != 0 or not dumped.stdout:
            raise RuntimeError(f"chromium dumped no DOM: {dumped.stderr.decode()[-2000:]}")
        return Rendered(shot.read_bytes(), dumped.stdout.decode("utf-8"))
