"""Size of a study report and the time headless Chromium takes to open it; prints JSON.

    python benchmarks/bench_report_page.py results/report.html --repeats 3

Each repeat starts a fresh browser (a first visit: plotly.js is compiled from scratch), opens the
page, waits for the load event, for plotly.js to be unpacked and for the first screen of plots to
be drawn, then opens the page again in the same browser (compiled code cached). The same is
measured for a page that only loads plotly.js from a file, the floor any plotly page pays on this
machine (a loaded shared machine inflates both alike). Needs Debian's
``chromium`` and ``chromium-driver`` and selenium (extra ``test``). Offline: the flags turn off
every background request of the browser, and the run fails if the page requests anything that is
not a local file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1400,1000"]


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def _wait(driver, script: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not driver.execute_script(script):
        if time.monotonic() > end:
            raise TimeoutError(script)
        time.sleep(0.02)


def open_once(driver, url: str) -> dict[str, float]:
    """Seconds to the load event and to the first drawn plot (plotly.js unpacked and run)."""
    started = time.monotonic()
    driver.get(url)
    loaded = time.monotonic() - started
    _wait(driver, "return document.body.getAttribute('data-plotly') === 'ready' || "
                  "document.querySelectorAll('div.plot').length === 0")
    # plots are drawn when they scroll into view: bring the first one there (a long summary
    # can fill the first screen of a large study)
    driver.execute_script("const p = document.querySelector('div.plot'); "
                          "if (p) p.scrollIntoView();")
    _wait(driver, "return Number(document.body.getAttribute('data-plots-rendered')) > 0 || "
                  "document.querySelectorAll('div.plot').length === 0")
    return {"load_event_s": round(loaded, 3),
            "interactive_s": round(time.monotonic() - started, 3)}


def _plotly_only_page(folder: Path) -> str:
    """A page that loads the plotly.js of plotly.py from a file and draws nothing."""
    from plotly.offline import get_plotlyjs

    (folder / "plotly.min.js").write_text(get_plotlyjs())
    page = folder / "plotly-only.html"
    page.write_text("<!DOCTYPE html><html><body><script src='plotly.min.js'></script><script>"
                    "document.body.setAttribute('data-plotly', 'ready');"
                    "document.body.setAttribute('data-plots-rendered', '1');</script></body>"
                    "</html>")
    return page.as_uri()


def _measure(url: str, repeats: int) -> dict:
    first, again, remote, errors = [], [], set(), []
    for _ in range(repeats):
        driver = _browser()
        try:
            first.append(open_once(driver, url))
            again.append(open_once(driver, url))
            for entry in driver.get_log("performance"):
                message = json.loads(entry["message"])["message"]
                if message["method"] == "Network.requestWillBeSent":
                    target = message["params"]["request"]["url"]
                    if urlparse(target).scheme not in ("file", "data", "blob", "about"):
                        remote.add(target)
            errors += [e["message"] for e in driver.get_log("browser")
                       if e["level"] in ("SEVERE", "WARNING")]
        finally:
            driver.quit()
    return {
        "first_visit": first, "reopen": again,
        "median_first_interactive_s": sorted(r["interactive_s"] for r in first)[len(first) // 2],
        "median_reopen_interactive_s": sorted(r["interactive_s"] for r in again)[len(again) // 2],
        "remote_requests": sorted(remote), "console_errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import tempfile

    report = _measure(args.report.resolve().as_uri(), args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        floor = _measure(_plotly_only_page(Path(folder)), args.repeats)
    print(json.dumps({
        "report": str(args.report), "size_bytes": args.report.stat().st_size, **report,
        "plotly_only_page": {k: floor[k] for k in ("median_first_interactive_s",
                                                   "median_reopen_interactive_s")},
        "load_average_1min": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
