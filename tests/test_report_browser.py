"""report.html in a headless Debian chromium: it renders, every figure loads, no console errors, no script runs.

Skipped where chromium is not installed, except in CI (CI=true), where a missing browser fails:
.ci/run installs it. Selenium is given the driver's path, so Selenium Manager never downloads anything.
"""

import os
from pathlib import Path

import pytest

from tests.test_report import EVIL, evil_report

CHROMIUM = Path(os.environ.get("MNIST_PARITY_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("MNIST_PARITY_CHROMEDRIVER", "/usr/bin/chromedriver"))


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the browser test (.ci/run installs chromium and chromium-driver)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        _unavailable(f"not installed: {', '.join(missing)} (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (see requirements.txt)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    written = evil_report(root, root / "out")
    browser.get(written.html.resolve().as_uri())
    return browser, written


def test_page_renders_with_its_title_and_sections(page):
    driver, _ = page
    assert driver.execute_script("return document.readyState") == "complete"
    assert driver.title.startswith("mnist-parity report")
    headings = driver.execute_script("return Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
    assert headings[:2] == ["Summary", "Training curves"] and "Parity ladder" in headings
    # every figure section comes before the long tables (the gate, the results), the no-band list last
    assert headings.index("Time and throughput") < headings.index("Sanity gate") < headings.index("Results side by side")
    assert headings[-1] == "Appendix: runs without a reference band"


def test_runs_without_a_reference_band_are_folded_away(page):
    driver, _ = page
    folded = driver.execute_script(
        "return Array.from(document.querySelectorAll('details')).map(d => [d.open, d.querySelector('table').checkVisibility()])")
    assert folded == [[False, False]]  # collapsed: the table is in the page but not shown
    assert "Runs without a reference band (8 rows; click to show)" in driver.execute_script("return document.body.innerText")
    gate = driver.execute_script("return document.querySelector('#sanity-gate').innerText")
    assert "6 runs: loss mse (the bands assume categorical_crossentropy)" in gate


def test_every_figure_loads(page):
    driver, written = page
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.src.slice(0, 22)])")
    assert len(images) == len(written.figures) >= 5
    for complete, width, height, source in images:
        assert complete and width > 0 and height > 0
        assert source == "data:image/png;base64,"


def test_no_console_errors(page):
    driver, _ = page
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []


def test_markup_in_names_is_shown_as_text_and_never_runs(page):
    driver, _ = page
    assert driver.execute_script("return document.scripts.length") == 0
    text = driver.execute_script("return document.body.innerText")
    assert EVIL in text  # "<script>alert(1)</script>&co" visible as literal text
    assert driver.execute_script("return document.querySelectorAll('td script, caption script, p script').length") == 0
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text
