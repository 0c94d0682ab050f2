"""The alert inbox in a real browser (headless chromium through Selenium, as
test_investigator_page.py): `serve --user ana` over a replay of the seed producer sample; the
investigator finds a ring account's alert in the inbox, opens it, assigns it and decides it
`fraud` from the page; the API then shows it closed by ana, the inbox filters it as closed and
the precision panel counts it. Screenshots go to .data/test-artifacts/."""

from __future__ import annotations

import json
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fraudtools.cli import main as cli_main
from tests.browser.test_investigator_page import browser, screenshot, wait_for  # noqa: F401 - fixture
from tests.conftest import PROJECT, SEED_SAMPLE
from tests.serving import serving

ACCOUNT = "1234-5678-28"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="inbox-") as tmp:
        data_dir = Path(tmp) / "data"
        assert cli_main(["replay", "--rules", str(PROJECT / "rules.yaml"), "--events", str(SEED_SAMPLE),
                         "--data-dir", str(data_dir), "--out", str(data_dir / "hits.jsonl")]) == 0
        with serving(data_dir, "--user", "ana") as url:
            yield url + "/"


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def test_an_investigator_decides_an_alert_from_the_page(server: str, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    (alert,) = get_json(server + f"api/alerts?account={ACCOUNT}")["items"]
    assert alert["status"] == "open"
    browser.get(server)
    selector = f"#inbox a.alert-link[data-alert='{alert['alert_id']}']"

    def open_alert() -> bool:  # found and clicked in one go: the page re-renders every few seconds
        browser.find_element(By.CSS_SELECTOR, selector).click()
        return True

    wait_for(open_alert, "the ring account's alert in the inbox")
    wait_for(lambda: "Alert on " + ACCOUNT in browser.find_element(By.ID, "alert").text, "the alert's panel")
    assert browser.find_element(By.ID, "account-title").text == f"Account {ACCOUNT}"
    assignee = browser.find_element(By.ID, "alert-assignee")
    assignee.clear()
    assignee.send_keys("ana")
    browser.find_element(By.ID, "alert-assign-button").click()
    wait_for(lambda: "assigned to ana" in browser.find_element(By.ID, "alert").text, "the alert assigned")
    Select(browser.find_element(By.ID, "alert-verdict")).select_by_value("fraud")
    browser.find_element(By.ID, "alert-note").send_keys("shared e-mail and phone ring")
    browser.find_element(By.ID, "alert-verdict-button").click()
    wait_for(lambda: "Closed: fraud by ana" in browser.find_element(By.ID, "alert").text, "the alert closed")
    screenshot(browser, "alert-decided.png")

    detail = get_json(server + f"api/alerts/{alert['alert_id']}")
    assert (detail["alert"]["status"], detail["alert"]["verdict"], detail["alert"]["note"]) == (
        "closed", "fraud", "shared e-mail and phone ring")
    assert [(e["action"], e["actor"]) for e in detail["audit"]][-2:] == [("assigned", "ana"), ("verdict", "ana")]

    browser.get(server + "#/")
    Select(wait_for(lambda: browser.find_element(By.ID, "inbox-status"), "the inbox filter")).select_by_value("closed")
    wait_for(lambda: [a.get_attribute("data-alert") for a in
                      browser.find_elements(By.CSS_SELECTOR, "#inbox a.alert-link")] == [alert["alert_id"]],
             "the inbox filtered to the closed alert")
    precision = wait_for(lambda: browser.find_element(By.ID, "precision").text, "the precision panel")
    for rule in alert["rules"]:
        assert rule in precision
    assert "100.0%" in precision
    screenshot(browser, "alert-inbox-closed.png")
