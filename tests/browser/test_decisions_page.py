"""The page's recent decisions in a real browser (headless chromium, as the investigator page
test): `serve` on a new directory, a decision posted while the page is open shows up in the
overview's own panel with its decision, without a reload."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_investigator_page import browser, screenshot, wait_for  # noqa: F401 - the fixture
from tests.serving import serving


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("decisions-page") / "new"
    with serving(data_dir) as url:
        yield url + "/"


def decide(server: str, payment: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(server + "api/decisions", data=json.dumps(payment).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def shown(driver: Any) -> list[tuple[str, str]]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#recent-decisions tbody tr")
    return [(r.find_elements(By.TAG_NAME, "td")[0].text, r.find_elements(By.TAG_NAME, "td")[2].text) for r in rows]


def test_a_decision_posted_while_the_page_is_open_is_listed(browser: Any, server: str) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get(server)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#recent-decisions .empty"), "the empty decisions panel")
    decide(server, {"event_id": "pay-ok", "account_id": "acct-1", "amount": 20, "ts": "2026-11-01T10:00:00Z"})
    decide(server, {"event_id": "pay-bad", "account_id": "acct-2", "amount": 20, "ip": "203.0.113.66",
                    "ts": "2026-11-01T10:00:01Z"})
    wait_for(lambda: shown(browser) == [("pay-bad", "decline"), ("pay-ok", "approve")], "the two decisions")
    tag = browser.find_element(By.CSS_SELECTOR, "#recent-decisions .tag.decision-decline")
    assert tag.text == "decline"
    assert Path(screenshot(browser, "recent-decisions.png")).stat().st_size > 5_000
