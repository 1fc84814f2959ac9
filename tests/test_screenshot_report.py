"""scripts/screenshot_report.sh: a 1400x900 PNG of a report's first screen, one-line errors."""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "screenshot_report.sh"


def test_missing_report_is_one_line_exit_2(tmp_path: Path) -> None:
    res = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "absent.html"), str(tmp_path / "x.png")],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "no such file" in res.stderr and res.stderr.count("\n") == 1
    usage = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_writes_first_screen_png(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    html.write_text("<!doctype html><html><body><h1>verdict</h1></body></html>")
    out = tmp_path / "shots" / "first.png"
    res = subprocess.run(["bash", str(SCRIPT), str(html), str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    head = out.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1400, 900)
