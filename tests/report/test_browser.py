"""The report in headless Chromium: loads without console errors, every figure decodes.

Needs the Debian package ``chromium`` (``apt-get install -y chromium``); skipped without it.
The screenshot is kept as ``report-screenshot.png`` beside the report for a person to look at.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless chromium is not installed "
                                "(apt-get install -y chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--virtual-time-budget=5000"]


def test_report_loads_without_console_errors_and_every_figure_decodes(toy_report):
    _, out, _, path = toy_report
    run = subprocess.run([CHROMIUM, *FLAGS, "--enable-logging=stderr", "--v=0", "--dump-dom",
                          path.as_uri()], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    body = re.search(r"<body[^>]*>", run.stdout).group(0)
    total = int(re.search(r'data-figures-total="(\d+)"', body).group(1))
    loaded = int(re.search(r'data-figures-loaded="(\d+)"', body).group(1))
    assert total == len(re.findall(r"<figure id=", path.read_text())) >= 15
    assert loaded == total
    shot = out / "report-screenshot.png"
    subprocess.run([CHROMIUM, *FLAGS, "--window-size=1400,2400", f"--screenshot={shot}",
                    path.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000
