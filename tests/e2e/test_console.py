"""The console in a real headless Chromium (Debian's package, driven by Selenium), on the sandbox
after a demo-like sync (issue 19, acceptance 1 and 2): counts, a seeded failure, replay after
fixing the value map, pause and resume; screenshots of the main views at two widths in docs/.

Chromium and its driver come from the system packages (`make browsers` installs them).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from p2c_cli.local import DEMO_VALUE_MAPS, Summary
from p2c_core.console.local import ConsoleServer
from p2c_core.flows import all_flows

from .conftest import E2E

ROOT = Path(__file__).resolve().parents[2]
# `make screenshots` writes docs/screenshots/; a test run writes a temporary folder, so that
# running the tests leaves the checkout as it was.
SHOTS_DIR = "SCREENSHOTS_DIR"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WIDE, PHONE = (1280, 800), (390, 844)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")  # fmt: skip


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    assert Path(CHROMIUM).exists() and Path(DRIVER).exists(), "no chromium/chromedriver: run `make browsers`"
    profile = tempfile.mkdtemp(prefix="p2c-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDE[0]},{WIDE[1]}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def demo(e2e: E2E) -> Iterator[tuple[E2E, Summary, str]]:
    summary = e2e.sync(*[f.name for f in all_flows()])
    with ConsoleServer() as server:
        yield e2e, summary, server.url


def loaded(driver: WebDriver, after: str = "") -> str:
    """Wait until the page has (re)loaded its data since `after` and is not loading again; the new stamp."""

    def settled(d: WebDriver) -> str | None:
        body = d.find_element(By.TAG_NAME, "body")
        stamp = body.get_attribute("data-loaded") or ""
        return stamp if stamp not in ("", after) and body.get_attribute("data-busy") is None else None

    return str(wait(driver, settled, 30))


def wait(driver: WebDriver, condition, timeout: float = 15):
    """Until condition(driver) is truthy; elements redrawn meanwhile are looked up again."""
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def card(driver: WebDriver, flow: str):
    return driver.find_element(By.CSS_SELECTOR, f"article[data-flow='{flow}']")


def day_counts(driver: WebDriver, flow: str) -> list[int]:
    row = card(driver, flow).find_elements(By.CSS_SELECTOR, "table.counts tbody tr")[1]
    return [int(td.text.replace(",", "")) for td in row.find_elements(By.TAG_NAME, "td")]


def click(driver: WebDriver, flow: str, action: str) -> None:
    loaded(driver)  # not while the cards are being drawn again
    card(driver, flow).find_element(By.CSS_SELECTOR, f"button[data-action='{action}']").click()


def shoot(driver: WebDriver, name: str) -> None:
    shots = Path(os.environ.get(SHOTS_DIR) or tempfile.gettempdir()) / (
        "" if os.environ.get(SHOTS_DIR) else "p2c-shots"
    )
    shots.mkdir(parents=True, exist_ok=True)
    for label, (w, h) in (("wide", WIDE), ("phone", PHONE)):
        driver.set_window_size(w, h)
        assert driver.save_screenshot(str(shots / f"console-{name}-{label}.png"))
    driver.set_window_size(*WIDE)


def test_console_shows_the_demo_replays_pauses_and_resumes(demo, browser: WebDriver, monkeypatch):
    e2e, summary, url = demo
    browser.get(url)
    stamp = loaded(browser)
    for flow, s in summary.flows.items():
        assert day_counts(browser, flow) == [s.read, s.written, s.skipped, s.failed], flow
    row = browser.find_element(By.CSS_SELECTOR, "#failure-table tr[data-key='B0001']")
    assert "value map 'unit' has no entry for 'spool'" in row.text
    shoot(browser, "flows")

    # the detail opens from the keyboard
    row.find_element(By.CSS_SELECTOR, "button").send_keys(Keys.ENTER)
    wait(browser, lambda d: d.find_element(By.ID, "detail").is_displayed())
    assert "B0001" in browser.find_element(By.ID, "detail-title").text
    assert "SalesUnitSymbol" in browser.find_element(By.ID, "detail-record").text
    shoot(browser, "failure")

    # fix the value map (a new worker reads it), replay from the page, let the queue run
    units = DEMO_VALUE_MAPS["P2C_VALUE_MAPS__UNIT"][:-1] + ', "spool": "Primary Unit"}'
    monkeypatch.setenv("P2C_VALUE_MAPS__UNIT", units)
    e2e.restart_runtime()
    browser.find_element(By.ID, "detail-replay").click()
    wait(browser, lambda d: "1 record replayed" in d.find_element(By.ID, "toast").text)
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    browser.find_element(By.ID, "refresh").click()
    stamp = loaded(browser, stamp)
    assert not browser.find_elements(By.CSS_SELECTOR, "#failure-table tr[data-key='B0001']")
    assert "B0001" not in {f.source_key for f in e2e.runtime.state.failures("products")}

    # pause: the flow shows paused and its next poll reads nothing
    click(browser, "accounts", "Pause")
    wait(browser, lambda d: card(d, "accounts").find_element(
        By.CSS_SELECTOR, "[data-field='state']").text == "paused")  # fmt: skip
    stamp = browser.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") or ""
    key = next(k for k in (r.get("accountnumber") for r in e2e.sandbox.dataverse.rows("accounts")) if k)
    with e2e.dataverse() as dv:
        dv.patch(f"accounts(accountnumber='{key}')", json={"name": "Edited While Paused"},
                 headers={"If-Match": "*"}).raise_for_status()  # fmt: skip
    before = day_counts(browser, "accounts")
    summary = e2e.sync("accounts")
    assert summary.flows["accounts"].read == 0
    browser.find_element(By.ID, "refresh").click()
    stamp = loaded(browser, stamp)
    assert day_counts(browser, "accounts") == before
    shoot(browser, "paused")

    # resume: the next poll carries the edit
    click(browser, "accounts", "Resume")
    wait(browser, lambda d: card(d, "accounts").find_element(
        By.CSS_SELECTOR, "[data-field='state']").text == "running")  # fmt: skip
    stamp = browser.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") or ""
    assert e2e.sync("accounts").flows["accounts"].written == 1
    browser.find_element(By.ID, "refresh").click()
    loaded(browser, stamp)
    assert day_counts(browser, "accounts")[1] == before[1] + 1
    history = browser.find_element(By.ID, "history").text
    assert "resume accounts by" in history and "pause accounts by" in history and "replay products by" in history
