"""Every route of the investigator's API through chalice.test.Client, over a replay of the seed
producer sample (reference ring 1234-5678-20..30): happy path, bad input, pagination, limits.
Answers are checked against what the stores hold (hits.jsonl, the graph, the replayed events)."""

from __future__ import annotations

import json
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.api import Investigator
from chalicelib.settings import Settings
from chalicelib.wiring import build_investigator
from fraudtools.cli import main as cli_main
from tests.conftest import PROJECT, SEED_SAMPLE

RING = [f"1234-5678-{n}" for n in range(20, 31)]


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="api-") as tmp:
        directory = Path(tmp)
        assert cli_main(["replay", "--rules", str(PROJECT / "rules.yaml"), "--events", str(SEED_SAMPLE),
                         "--data-dir", str(directory), "--out", str(directory / "hits.jsonl")]) == 0
        yield directory


@pytest.fixture(scope="module")
def investigator(data_dir: Path) -> Iterator[Investigator]:
    built = build_investigator(Settings(data_dir=data_dir))
    yield built
    built.close()


@pytest.fixture
def client(investigator: Investigator) -> Iterator[Client]:
    app_module.use_investigator(investigator)
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")
    try:
        with Client(app_module.app) as test_client:
            yield test_client
    finally:
        app_module.use_investigator(None)


@pytest.fixture(scope="module")
def all_hits(data_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (data_dir / "hits.jsonl").read_text().splitlines()]


def get(client: Client, url: str, status: int = 200) -> Any:
    response = client.http.get(url)
    body = json.loads(response.body)
    assert response.status_code == status, (url, body)
    assert response.headers["Content-Type"] == "application/json"
    return body


def pages(client: Client, url: str) -> list[dict[str, Any]]:
    """Every item of a paginated list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        body = get(client, url + (f"&cursor={cursor}" if cursor else ""))
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination does not end")


def test_health_and_rules_in_force(client: Client) -> None:
    health = get(client, "/api/health")
    rules = get(client, "/api/rules")
    assert health["status"] == "ok" and health["graph"] == "sqlite"
    assert health["ruleset_version"] == rules["version"]
    assert health["graph_counts"]["edges"] > 0
    assert rules["last_rejected"] is None and rules["loaded_at"]
    assert {"high-value-5m", "shared-identity-ring"} <= {r["id"] for r in rules["rules"]}


def test_rules_report_the_last_rejected_edit(tmp_path: Path, data_dir: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text((PROJECT / "rules.yaml").read_text())
    investigator = build_investigator(Settings(data_dir=data_dir, rules_file=rules_file, rules_reload_seconds=0))
    app_module.use_investigator(investigator)
    try:
        with Client(app_module.app) as c:
            version = get(c, "/api/rules")["version"]
            rules_file.write_text("rules: [{id: Bad Id, kind: nope}]\n")
            body = get(c, "/api/rules")
    finally:
        app_module.use_investigator(None)
        investigator.close()
    assert body["version"] == version  # the last good ruleset stays in force
    assert body["last_rejected"]["kept_version"] == version
    assert "kind" in body["last_rejected"]["reason"] or "id" in body["last_rejected"]["reason"]


def test_hits_are_every_hit_once_newest_first_across_pages(client: Client, all_hits: list[dict[str, Any]]) -> None:
    listed = pages(client, "/api/hits?limit=37")
    assert len(listed) == len(all_hits) == len({h["hit_id"] for h in listed})
    assert {h["hit_id"] for h in listed} == {h["hit_id"] for h in all_hits}
    order = [(h["ts"], h["hit_id"]) for h in listed]
    assert order == sorted(order, reverse=True)
    by_id = {h["hit_id"]: h for h in all_hits}
    sample = listed[0]
    assert sample["rule_id"] == by_id[sample["hit_id"]]["rule_id"]
    assert sample["to"] == by_id[sample["hit_id"]]["edge"]["to"]["value"]


@pytest.mark.parametrize("query", ["rule=high-value-5m", "account=1234-5678-20", "mode=shadow",
                                   "rule=velocity-1m&account=1234-5678-28&mode=enforce",
                                   "since=2026-11-28T16:45:21Z&until=2026-11-28T16:45:22.5Z"])
def test_hit_filters_match_a_scan_of_the_hit_sink(client: Client, all_hits: list[dict[str, Any]], query: str) -> None:
    params = dict(part.split("=") for part in query.split("&"))
    expected = {h["hit_id"] for h in all_hits
                if h["rule_id"] == params.get("rule", h["rule_id"])
                and h["account_id"] == params.get("account", h["account_id"])
                and h["mode"] == params.get("mode", h["mode"])
                and ("since" not in params or h["ts"] >= "2026-11-28T16:45:21.000Z")
                and ("until" not in params or h["ts"] < "2026-11-28T16:45:22.500Z")}
    assert expected
    assert {h["hit_id"] for h in pages(client, f"/api/hits?limit=50&{query}")} == expected


def test_account_hits_route_is_the_account_filter(client: Client, all_hits: list[dict[str, Any]]) -> None:
    listed = pages(client, "/api/accounts/1234-5678-27/hits?limit=10")
    assert {h["hit_id"] for h in listed} == {h["hit_id"] for h in all_hits if h["account_id"] == "1234-5678-27"}


def test_hit_rates_count_every_hit_per_rule_and_bucket(client: Client, all_hits: list[dict[str, Any]]) -> None:
    buckets = pages(client, "/api/hit-rates?bucket_seconds=1&limit=1")
    assert len(buckets) == 3  # the sample spans three seconds
    counted: Counter[tuple[str, str]] = Counter()
    for bucket in buckets:
        assert bucket["total"] == sum(bucket["counts"].values())
        for rule, n in bucket["counts"].items():
            counted[(bucket["bucket_start"], rule)] += n
    expected = Counter((h["ts"][:19] + ".000Z", h["rule_id"]) for h in all_hits)
    assert counted == expected
    one_rule = get(client, "/api/hit-rates?bucket_seconds=3600&rule=high-value-5m")
    assert one_rule["rules"] == ["high-value-5m"]
    assert one_rule["items"][0]["total"] == sum(1 for h in all_hits if h["rule_id"] == "high-value-5m")


def test_top_accounts_rank_by_hits(client: Client, all_hits: list[dict[str, Any]]) -> None:
    ranked = pages(client, "/api/top-accounts?limit=7")
    counts = Counter(h["account_id"] for h in all_hits)
    assert {r["account_id"]: r["hits"] for r in ranked} == dict(counts)
    assert [r["hits"] for r in ranked] == sorted(counts.values(), reverse=True)
    assert ranked[0]["account_id"] == "1234-5678-28"
    enforce = get(client, "/api/top-accounts?mode=enforce&limit=1")["items"][0]
    assert enforce["hits"] == Counter(h["account_id"] for h in all_hits if h["mode"] == "enforce").most_common(1)[0][1]


def test_activity_lists_the_accounts_events_newest_first(client: Client) -> None:
    events = pages(client, "/api/accounts/1234-5678-20/activity?limit=4")
    sample = [json.loads(json.loads(line)["data"]) for line in SEED_SAMPLE.read_text().splitlines()]
    assert len(events) == sum(1 for e in sample if e["account"] == "1234-5678-20") == 14
    assert [e["seq"] for e in events] == sorted((e["seq"] for e in events), reverse=True)
    assert {e["account_id"] for e in events} == {"1234-5678-20"}
    windowed = get(client, "/api/accounts/1234-5678-20/activity?since=2026-11-28T16:45:21Z")["items"]
    assert windowed and all(e["ts"] >= "2026-11-28T16:45:21" for e in windowed)
    assert get(client, "/api/accounts/nobody/activity")["items"] == []


def test_aggregates_are_every_rule_as_of_the_latest_event(client: Client) -> None:
    body = get(client, "/api/accounts/1234-5678-20/aggregates")
    rules = get(client, "/api/rules")["rules"]
    assert [i["rule_id"] for i in body["items"]] == [r["id"] for r in rules]
    high_value = next(i for i in body["items"] if i["rule_id"] == "high-value-5m")
    assert high_value["verdict"] == "fires" and high_value["aggregate"] > high_value["threshold"] == 50000
    assert body["as_of_event"] == get(client, "/api/accounts/1234-5678-20/activity?limit=1")["items"][0]["event_id"]
    assert get(client, "/api/accounts/nobody/aggregates", 404)["error"]
    assert "not a parameter" in get(client, "/api/accounts/1234-5678-20/aggregates?x=1", 400)["error"]


def test_neighbourhood_holds_the_ring_and_marks_hit_edges(client: Client, all_hits: list[dict[str, Any]]) -> None:
    body = get(client, "/api/accounts/1234-5678-20/neighbourhood?hops=1")
    accounts = {n["key"] for n in body["nodes"] if n["type"] == "Account"}
    assert set(RING) <= accounts
    ids = {n["id"] for n in body["nodes"]}
    assert "Email:shared@example-anycompany.com" in ids and "Phone:10001000" in ids
    assert all(e["source"] in ids and e["target"] in ids for e in body["edges"])
    hit_edges = [e for e in body["edges"] if e["hit"]]
    drawn_hits = sum(e["count"] for e in hit_edges)
    assert drawn_hits == sum(1 for h in all_hits if h["account_id"] in accounts)
    assert ("Account:1234-5678-20", "Email:shared@example-anycompany.com", "shared-identity-ring") in {
        (e["source"], e["target"], e["rule_id"]) for e in hit_edges}
    small = get(client, "/api/accounts/1234-5678-20/neighbourhood?hops=1&max_nodes=5")
    assert len(small["nodes"]) == 5 and small["truncated"] is True
    small_ids = {n["id"] for n in small["nodes"]}
    assert all(e["source"] in small_ids and e["target"] in small_ids for e in small["edges"])
    assert get(client, "/api/accounts/nobody/neighbourhood", 404)["error"] == "account 'nobody' is not in the graph"


def test_rings_paginate_and_hold_the_reference_ring(client: Client) -> None:
    rings = pages(client, "/api/rings?limit=3&min_size=2")
    assert len(rings) == get(client, "/api/rings?min_size=2")["total"]
    reference = [r for r in rings if "1234-5678-20" in r["accounts"]]
    assert len(reference) == 1 and reference[0]["accounts"] == sorted(RING)
    assert {"label": "Email", "key": "shared@example-anycompany.com", "accounts": sorted(RING)} in \
        reference[0]["identifiers"]
    # most cohesive first (evidence x cohesion), as `graph rings` ranks them: the ring leads
    ranks = [r["evidence"] * r["cohesion"] for r in rings]
    assert ranks == sorted(ranks, reverse=True) and rings[0]["accounts"] == sorted(RING)
    by_phone = get(client, "/api/rings?via=phone&min_size=11")["items"]
    assert [r["accounts"] for r in by_phone] == [sorted(RING)]


@pytest.mark.parametrize(("url", "fragment"), [
    ("/api/hits?limit=0", "limit: Input should be greater than or equal to 1"),
    ("/api/hits?limit=501", "limit: Input should be less than or equal to 500"),
    ("/api/hits?limit=ten", "limit: Input should be a valid integer"),
    ("/api/hits?mode=maybe", "mode: Input should be 'enforce' or 'shadow'"),
    ("/api/hits?rule=Not%20A%20Rule", "rule: String should match pattern"),
    ("/api/hits?since=yesterday", "since: Input should be a valid datetime"),
    ("/api/hits?since=2026-11-29T00:00:00Z&until=2026-11-28T00:00:00Z", "since must be before until"),
    ("/api/hits?cursor=%25%25%25", "cursor: not a cursor this API issued"),
    ("/api/hits?cursor=MTA", "cursor: not a cursor of this route"),
    ("/api/hits?colour=red", "colour: is not a parameter of this route"),
    ("/api/hit-rates?bucket_seconds=0", "bucket_seconds: Input should be greater than or equal to 1"),
    ("/api/hit-rates?limit=2001", "limit: Input should be less than or equal to 2000"),
    ("/api/top-accounts?limit=101", "limit: Input should be less than or equal to 100"),
    ("/api/top-accounts?cursor=WyJhIiwiYiJd", "cursor: not a cursor of this route"),
    ("/api/accounts/1234-5678-20/activity?limit=501", "limit: Input should be less than or equal to 500"),
    ("/api/accounts/1234-5678-20/activity?cursor=LTE", "cursor: not a cursor of this route"),
    ("/api/accounts/1234-5678-20/hits?account=x", "account: is not a parameter of this route"),
    ("/api/accounts/1234-5678-20/neighbourhood?hops=4", "hops: Input should be less than or equal to 3"),
    ("/api/accounts/1234-5678-20/neighbourhood?max_nodes=501", "max_nodes: Input should be less than or equal to 500"),
    ("/api/accounts/" + "x" * 201 + "/neighbourhood", "account: give an account id of 1 to 200"),
    ("/api/rings?via=email,shoe_size", "via.1: Input should be"),
    ("/api/rings?via=", "via: name at least one of"),
    ("/api/rings?min_size=1", "min_size: Input should be greater than or equal to 2"),
    ("/api/rings?limit=101", "limit: Input should be less than or equal to 100"),
])
def test_bad_input_is_a_400_that_says_what_fits(client: Client, url: str, fragment: str) -> None:
    assert fragment in get(client, url, 400)["error"]


def test_limits_bound_every_list(client: Client) -> None:
    for url in ("/api/hits?limit=3", "/api/hit-rates?bucket_seconds=1&limit=2", "/api/top-accounts?limit=3",
                "/api/accounts/1234-5678-20/activity?limit=3", "/api/accounts/1234-5678-20/hits?limit=3",
                "/api/rings?limit=2&min_size=2"):
        body = get(client, url)
        limit = int(url.split("limit=")[1].split("&")[0])
        assert len(body["items"]) == limit and body["next_cursor"], url
    assert len(get(client, "/api/hits")["items"]) == 50  # the default


def test_the_page_and_its_files_are_served_and_nothing_else(client: Client) -> None:
    page = client.http.get("/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert b'src="static/app.js"' in page.body and b"http" not in page.body.split(b"<footer>")[0].replace(
        b'http-equiv', b'')  # nothing loaded from elsewhere
    for name, kind in (("app.js", "text/javascript"), ("graph.js", "text/javascript"), ("style.css", "text/css")):
        response = client.http.get(f"/static/{name}")
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(kind)
        assert b"https://" not in response.body and b"http://" not in response.body.replace(
            b"http://www.w3.org/2000/svg", b"")
    for name in ("..%2Fapp.py", "__init__.py", "secret"):
        assert client.http.get(f"/static/{name}").status_code == 404


def test_a_store_failure_is_a_503_with_the_reason(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.stores import StoreError

    investigator = app_module.get_investigator()

    def broken(*_: Any, **__: Any) -> Any:
        raise StoreError("graph store failed while reading hits: disk gone")

    assert investigator.graph is not None
    monkeypatch.setattr(investigator.graph, "find_hits", broken)
    assert get(client, "/api/hits", 503) == {"error": "graph store failed while reading hits: disk gone"}
