"""The report in headless Chromium, driven by selenium: no console error, no network request,
every figure drawn, a heatmap cell's tooltip read, screenshots kept for a person to look at.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``) and selenium (extra ``test``); skipped without them. Screenshots go beside the
report as ``report-screenshot-top.png`` and ``report-screenshot-hover.png``.
"""

from __future__ import annotations

import json
import shutil
import time
from urllib.parse import urlparse

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="headless chromium and its driver are not installed "
           "(apt-get install -y chromium chromium-driver)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1400,1000", "--hide-scrollbars"]
LOCAL = ("file", "data", "blob", "about", "chrome")


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, script: str, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}")


def open_report(driver, path) -> dict[str, float]:
    """Open the page; seconds to the load event and until plotly.js is ready and the first
    screen of plots is drawn."""
    started = time.monotonic()
    driver.get(path.as_uri())
    loaded = time.monotonic() - started
    _wait(driver, "return document.body.getAttribute('data-plotly') === 'ready'")
    _wait(driver, "return Number(document.body.getAttribute('data-plots-rendered')) > 0 || "
                  "document.querySelectorAll('div.plot').length === 0")
    return {"load_event_s": loaded, "interactive_s": time.monotonic() - started}


def test_report_in_headless_chromium(toy_report, browser):
    _, out, _, path = toy_report
    # Opening time is measured by benchmarks/bench_report_page.py (RESULTS.md); on a loaded
    # shared machine it varies several-fold, so here it only has to open at all.
    assert open_report(browser, path)["interactive_s"] < 60.0
    browser.save_screenshot(str(out / "report-screenshot-top.png"))

    heatmap = browser.find_element("id", "plot-matrix-toy-id-cknna-k10")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", heatmap)
    _wait(browser, "return document.getElementById('plot-matrix-toy-id-cknna-k10')"
                   ".getAttribute('data-state') === 'drawn'")
    drag = heatmap.find_element("css selector", ".nsewdrag")
    box = browser.execute_script("var r = arguments[0].getBoundingClientRect();"
                                 "return [r.width, r.height];", drag)
    from selenium.webdriver.common.action_chains import ActionChains

    # five models: move one cell right of the centre (an off-diagonal cell)
    ActionChains(browser).move_to_element_with_offset(drag, int(box[0] / 5), 0).perform()
    tooltip = _wait(browser, "var t = document.querySelector("
                             "'#plot-matrix-toy-id-cknna-k10 .hoverlayer .hovertext');"
                             "return t ? t.textContent : null;", timeout=10)
    assert "cknna-k10 (raw)" in tooltip and "N = 120" in tooltip and "k = 10" in tooltip
    assert "calibrated:" in tooltip and "p (FDR-adjusted):" in tooltip
    names = [m for m in ("alpha-large", "alpha-small", "beta-1", "beta-2", "random-noise")
             if m in tooltip]
    assert len(names) == 2, tooltip
    browser.save_screenshot(str(out / "report-screenshot-hover.png"))

    # every figure drawn once scrolled through; every PNG decoded
    browser.execute_script("document.querySelectorAll('div.plot').forEach("
                           "function (d) { window.matteralignDraw(d); });")
    total = int(browser.execute_script("return document.body.getAttribute('data-plots-total')"))
    assert total >= 15
    _wait(browser, f"return Number(document.body.getAttribute('data-plots-rendered')) === {total}")
    assert browser.execute_script("return document.body.getAttribute('data-figures-loaded') === "
                                  "document.body.getAttribute('data-figures-total')")

    # the map's colour buttons: by |energy error| shows the colour bar
    plot = browser.find_element("id", "plot-map-alpha-large")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", plot)
    plot.find_elements("css selector", ".updatemenu-button")[1].click()
    _wait(browser, "return document.querySelector('#plot-map-alpha-large .colorbar') !== null")

    # the model picker and a sortable table respond
    browser.execute_script("var s = document.getElementById('picker-model'); s.value = 'beta-1';"
                           "s.dispatchEvent(new Event('change'));")
    picked = browser.find_element("id", "picker-table").text
    assert "toy-id" in picked and "alpha-large" in picked and "beta-1" not in picked.split("\n")[0]
    first = browser.execute_script(
        "var t = document.querySelector('table.sortable'); var th = t.querySelector('thead th');"
        "th.click(); th.click(); return t.tBodies[0].rows[0].cells[0].textContent;")
    assert first

    logs = browser.get_log("browser")
    assert [e["message"] for e in logs if e["level"] in ("SEVERE", "WARNING")] == []
    requests = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    remote = [u for u in requests if urlparse(u).scheme not in LOCAL]
    assert requests and remote == []
    assert (out / "report-screenshot-hover.png").stat().st_size > 10_000
