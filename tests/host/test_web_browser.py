"""The dashboard in a real browser: `nasbox web` served by waitress, driven by Debian's
Chromium (headless) through Selenium. Screenshots of the overview and a job page go to
NASBOX_SCREENSHOTS (default /tmp/nasbox-screenshots)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from nasbox.samba import login_ban
from tests.host.conftest import free_port
from tests.support import web

pytestmark = pytest.mark.host

SCREENSHOTS = Path(os.environ.get("NASBOX_SCREENSHOTS", "/tmp/nasbox-screenshots"))
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path: Path, nasbox_dirs: dict[str, Path]) -> Iterator[str]:
    """`python -m nasbox web` with this tree's code, on a free port; its base URL."""
    web.seed()
    port = free_port()
    (tmp_path / "nasbox.yaml").write_text("{}\n")
    env = {**os.environ, **web.environment(tmp_path), "WEB_PORT": str(port), "PYTHONPATH": str(REPO),
           "NASBOX_CONFIG": str(tmp_path / "nasbox.yaml")}
    process = subprocess.Popen([sys.executable, "-m", "nasbox", "web"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{base}/login", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, "nasbox web ended"
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    for tool in ("chromium", "chromedriver"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: apt-get install chromium chromium-driver (run .ci/setup)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,1400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(browser: webdriver.Chrome, base: str, user: str, password: str) -> None:
    browser.get(f"{base}/login")
    browser.find_element(By.ID, "user").send_keys(user)
    browser.find_element(By.ID, "password").send_keys(password)
    button = browser.find_element(By.ID, "sign-in")
    button.click()
    # The page the form's answer loads, not the login page still shown while it comes.
    WebDriverWait(browser, 10).until(expected_conditions.staleness_of(button))


def confirm(browser: webdriver.Chrome) -> None:
    """Answer the confirmation page an action shows first (once it has loaded)."""
    WebDriverWait(browser, 10).until(expected_conditions.element_to_be_clickable((By.ID, "confirm"))).click()


def test_admin_sees_the_hold_and_the_repair_charts_and_releases_the_hold(server: str, browser: webdriver.Chrome):
    sign_in(browser, server, "admin", web.ADMIN_PASSWORD)
    held = browser.find_element(By.ID, "held-docs")
    assert web.HOLD_REASON in held.text
    assert web.REPAIRED in browser.find_element(By.ID, "job-scrub-backup").text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "overview.png"))

    browser.find_element(By.LINK_TEXT, "sync docs").click()
    charts = browser.find_elements(By.CSS_SELECTOR, "#charts svg.chart")
    assert len(charts) == 3 and charts[0].size["width"] > 100
    assert len(charts[0].find_elements(By.CSS_SELECTOR, "circle.chart-run")) == web.SYNC_RUNS
    assert len(browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")) == web.SYNC_RUNS
    browser.save_screenshot(str(SCREENSHOTS / "job.png"))

    browser.get(server)
    browser.find_element(By.ID, "release-docs").click()
    confirm(browser)  # asked first
    WebDriverWait(browser, 10).until(expected_conditions.url_to_be(f"{server}/"))
    with pytest.raises(NoSuchElementException):
        browser.find_element(By.ID, "held-docs")


def test_a_viewer_has_no_buttons(server: str, browser: webdriver.Chrome):
    sign_in(browser, server, "alice", web.VIEWER_PASSWORD)
    assert web.HOLD_REASON in browser.find_element(By.ID, "held-docs").text
    assert browser.find_elements(By.CSS_SELECTOR, "main button") == []


def test_a_wrong_password_is_refused_and_reported_to_the_ban(server: str, browser: webdriver.Chrome):
    sign_in(browser, server, "admin", "not-the-password")
    assert "wrong user name or password" in browser.find_element(By.ID, "login-error").text
    assert browser.get_cookies() == []
    assert login_ban.take_reported_failures() == ["127.0.0.1"]


def test_overview_fits_a_phone_screen(server: str, browser: webdriver.Chrome):
    browser.set_window_size(390, 844)
    sign_in(browser, server, "admin", web.ADMIN_PASSWORD)
    assert browser.find_element(By.ID, "held-docs").is_displayed()
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "overview-phone.png"))


def test_run_now_starts_a_run_that_the_job_page_then_lists(server: str, browser: webdriver.Chrome):
    sign_in(browser, server, "admin", web.ADMIN_PASSWORD)
    browser.find_element(By.ID, "run-sync-docs").click()
    confirm(browser)
    WebDriverWait(browser, 10).until(expected_conditions.url_to_be(f"{server}/jobs/sync/docs"))

    def web_run_listed(driver: webdriver.Chrome) -> bool:
        driver.refresh()
        triggers = [row.find_elements(By.TAG_NAME, "td")[1].text
                    for row in driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")]
        return "web" in triggers

    WebDriverWait(browser, 60, poll_frequency=1).until(web_run_listed)
