"""The investigator's page in a real browser: Debian's chromium, headless, driven by Selenium
through chromium-driver (both from apt via scripts/install-test-services.sh; no browser download).
The server is `python -m chalicelib serve` on loopback over a replay of the seed producer sample,
whose reference ring is 1234-5678-20..30 sharing one e-mail and one phone. Screenshots are kept
under .data/test-artifacts/ (the path is printed). Without the browser the test FAILS, loudly."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fraudtools.cli import main as cli_main
from tests.conftest import PROJECT, SEED_SAMPLE
from tests.serving import serving

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = PROJECT / ".data" / "test-artifacts"
RING = [f"1234-5678-{n}" for n in range(20, 31)]
FIRST_PART = 300  # lines replayed before the page opens; the rest while it is open


def replay(lines: list[str], data_dir: Path, name: str) -> None:
    events = data_dir.parent / f"{name}.jsonl"
    events.write_text("".join(lines), encoding="utf-8")
    assert cli_main(["replay", "--rules", str(PROJECT / "rules.yaml"), "--events", str(events),
                     "--data-dir", str(data_dir), "--out", str(data_dir / "hits.jsonl")]) == 0


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="investigator-") as tmp:
        directory = Path(tmp) / "data"
        replay(SEED_SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:FIRST_PART], directory, "first")
        yield directory


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[str]:
    with serving(data_dir) as url:
        yield f"{url}/"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).exists() or shutil.which(p))]
    if missing:
        pytest.fail(f"BROWSER MISSING: {', '.join(missing)} not found. Run `sh scripts/install-test-services.sh` "
                    "(apt-get install chromium chromium-driver) - this test does not skip.", pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -r requirements-dev.txt", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1500"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(condition: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # the page is re-rendering; elements come and go
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def top_hits(driver: Any) -> dict[str, int]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#top-accounts tbody tr")
    return {r.find_element(By.CSS_SELECTOR, "a").text: int(r.find_elements(By.TAG_NAME, "td")[1].text.replace(",", ""))
            for r in rows}


def test_overview_refreshes_while_a_replay_runs_then_the_ring_is_drawn(browser: Any, server: str,
                                                                       data_dir: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#rates-chart rect"), "the hit-rate chart")
    before = wait_for(lambda: top_hits(browser), "the top flagged accounts")
    rules = get_json(server + "api/rules")
    shown_rules = {e.text for e in browser.find_elements(By.CSS_SELECTOR, "#rules tbody tr td:first-child")}
    assert shown_rules == {r["id"] for r in rules["rules"]}

    # the rest of the stream arrives while the page is open: it shows up without a reload
    replay(SEED_SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[FIRST_PART:], data_dir, "rest")
    expected = {r["account_id"]: r["hits"] for r in get_json(server + "api/top-accounts?limit=15")["items"]}
    assert expected != before  # the second part did add hits
    wait_for(lambda: top_hits(browser) == expected, "the top accounts to refresh after the replay")
    screenshot(browser, "investigator-overview.png")

    # an investigator opens the reference ring's account from the rings table
    def open_ring_account() -> bool:  # found and clicked in one go: the page re-renders every few seconds
        link = [a for a in browser.find_elements(By.CSS_SELECTOR, "a.account-link")
                if a.get_attribute("data-account") == "1234-5678-20"]
        link[0].click()
        return True

    wait_for(open_ring_account, "a link to 1234-5678-20")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, '#graph g.node[data-key="1234-5678-20"]'),
             "the account's neighbourhood graph")
    drawn_accounts = {g.get_attribute("data-key") for g in
                      browser.find_elements(By.CSS_SELECTOR, '#graph g.node[data-type="Account"]')}
    assert set(RING) <= drawn_accounts, f"ring members missing from the drawing: {set(RING) - drawn_accounts}"
    centre = browser.find_element(By.CSS_SELECTOR, "#graph g.node.center")
    assert centre.get_attribute("data-key") == "1234-5678-20"
    # the shared e-mail and phone that make it a ring are drawn, linked to every member
    def drawn_edges() -> list[tuple[str, str, str, str]]:  # read in one go: the view re-renders as it refreshes
        return [(e.get_attribute("data-source"), e.get_attribute("data-target"), e.get_attribute("data-hit"),
                 e.get_attribute("data-rules") or "")
                for e in browser.find_elements(By.CSS_SELECTOR, "#graph path.edge")]

    edges = wait_for(drawn_edges, "the drawn edges")
    links = {(source, target) for source, target, hit, _ in edges if hit != "true"}
    for identifier in ("Email:shared@example-anycompany.com", "Phone:10001000"):
        assert {a for a, target in links if target == identifier} >= {f"Account:{a}" for a in RING} - \
            {"Account:1234-5678-20"} or identifier in {t for _, t in links}
    # hit edges: exactly the API's (one drawn edge per account and target, naming every rule on it)
    hit_edges = {(source, target): set(rules_on.split(",")) for source, target, hit, rules_on in edges
                 if hit == "true"}
    api_graph = get_json(server + "api/accounts/1234-5678-20/neighbourhood?hops=1")
    expected_hits: dict[tuple[str, str], set[str]] = {}
    for e in api_graph["edges"]:
        if e["hit"]:
            expected_hits.setdefault((e["source"], e["target"]), set()).add(e["rule_id"])
    assert hit_edges == expected_hits
    ring_hit_sources = {source for source, _ in hit_edges if source.removeprefix("Account:") in RING}
    assert len(ring_hit_sources) >= 4, ring_hit_sources  # 20, 27, 28, 29 at least, as the seed's detectors flag
    assert ("Account:1234-5678-20", "Email:shared@example-anycompany.com") in hit_edges  # the ring rule's edge
    assert "shared-identity-ring" in set().union(*hit_edges.values())
    stroke = browser.execute_script(
        "return getComputedStyle(document.querySelector('#graph path.edge.hit')).stroke")
    assert stroke == "rgb(217, 45, 32)", stroke  # drawn in the hit colour
    # the account's own tables: every rule's window as of its latest event, its hits, its activity
    def aggregates_table() -> dict[str, str]:
        cells = [row.find_elements(By.TAG_NAME, "td") for row in
                 browser.find_elements(By.CSS_SELECTOR, "#aggregates tbody tr")]
        return {cell[0].text: cell[1].text for cell in cells}

    aggregates = wait_for(aggregates_table, "the account's aggregates table")
    assert aggregates.get("high-value-5m") == "fires", aggregates
    assert set(aggregates) == {r["id"] for r in rules["rules"]}
    assert len(browser.find_elements(By.CSS_SELECTOR, "#activity tbody tr")) == 14  # the account's 14 events
    assert browser.find_elements(By.CSS_SELECTOR, "#account-hits tbody tr")
    path = screenshot(browser, "investigator-ring-account.png")
    assert path.stat().st_size > 10_000


def test_an_account_id_that_needs_encoding_opens_from_the_page(browser: Any, server: str, data_dir: Path) -> None:
    from selenium.webdriver.common.by import By

    odd = ["ünï 1", "a/b", "x?y#z"]
    replay([json.dumps({"event_id": f"odd-{n}-{i}", "account_id": account, "amount": 5 + i,
                        "ts": f"2026-11-28T17:0{i}:00Z", "email": f"odd-{n}@example.com"}) + "\n"
            for n, account in enumerate(odd) for i in range(3)], data_dir, "odd")
    for account in odd:
        browser.get(server)
        box = wait_for(lambda: browser.find_element(By.ID, "search-account"), "the search box")
        box.send_keys(account)  # typed into the page's own box: the page builds the URLs itself
        box.submit()
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#activity tbody tr")) == 3,
                 f"the 3 events of {account!r}")
        centre = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#graph g.node.center"),
                          f"the neighbourhood of {account!r}")
        assert centre[0].get_attribute("data-key") == account
