"""The graph's read-only hit queries the investigator's API uses (`find_hits`, `hit_counts`,
`top_accounts`) on every embedded backend - SQLite tables (queries in SQL) and gremlite (a
Gremlin traversal; the aggregates from the interface's default) - against a scan in Python."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.hits import EdgeEnd, Hit, HitEdge
from chalicelib.stores import GraphStore, GremlinGraphStore, GremliteConnection, SQLiteGraphStore
from chalicelib.stores.graph_base import HitFilter

BACKENDS = ("sqlite", "gremlite")
ACCOUNTS = ["a1", "a2", "a3"]
RULES = ["r1", "r2"]
TIMES = ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.999Z", "2026-01-01T00:00:01.000Z",
         "2026-01-01T01:00:00.000Z", "2026-01-02T00:00:00.000Z"]


def make_hit(n: int, account: str, rule: str, mode: str, ts: str) -> Hit:
    return Hit(f"h{n:03d}", rule, "velocity", mode, "high", f"e{n}", ts, account, "account_id", account, 7, 5, "v1",
               HitEdge("FLAG", EdgeEnd("account_id", account), EdgeEnd("merchant_id", f"m{n % 2}")),
               evidence={"n": n})


hits_lists = st.lists(st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(RULES),
                                st.sampled_from(["enforce", "shadow"]), st.sampled_from(TIMES)), max_size=25)
filters = st.builds(HitFilter, rule_id=st.none() | st.sampled_from(RULES),
                    account_id=st.none() | st.sampled_from(ACCOUNTS),
                    mode=st.none() | st.sampled_from(["enforce", "shadow"]),
                    since=st.none() | st.sampled_from(TIMES), until=st.none() | st.sampled_from(TIMES))


def open_store(backend: str, directory: Path) -> GraphStore:
    if backend == "sqlite":
        return SQLiteGraphStore(directory / "entity-graph.sqlite")
    return GremlinGraphStore(GremliteConnection(directory / "graph.sqlite"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[GraphStore]:
    graph = open_store(backend, tmp_path)
    yield graph
    graph.close()


def scan(hits: list[Hit], where: HitFilter) -> list[dict[str, Any]]:
    rows = [{"hit_id": h.hit_id, "rule_id": h.rule_id, "account_id": h.account_id, "mode": h.mode, "ts": h.ts}
            for h in hits]
    return sorted((r for r in rows if where.matches(r)), key=lambda r: (r["ts"], r["hit_id"]), reverse=True)


def epoch_ms(ts: str) -> int:
    return round(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=25)
@given(specs=hits_lists, where=filters, page=st.integers(1, 6), bucket_s=st.sampled_from([1, 60, 3600, 86400]))
def test_hit_queries_match_a_scan(backend_name: str, specs: list[tuple[str, str, str, str]], where: HitFilter,
                                  page: int, bucket_s: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    hits = [make_hit(n, *spec) for n, spec in enumerate(specs)]
    store = open_store(backend_name, tmp_path_factory.mktemp("graph"))
    try:
        store.write_hits(hits)
        store.commit()
        expected = scan(hits, where)
        # keyset pages, newest first, every hit once
        listed: list[dict[str, Any]] = []
        cursor = where
        while True:
            found = store.find_hits(cursor, page)
            listed.extend(found)
            if len(found) < page:
                break
            cursor = replace(where, before=(found[-1]["ts"], found[-1]["hit_id"]))
        assert [h["hit_id"] for h in listed] == [h["hit_id"] for h in expected]
        for row in listed:
            original = next(h for h in hits if h.hit_id == row["hit_id"])
            assert (row["from"], row["to"], row["label"], row["evidence"]) == (
                original.account_id, original.edge.to.value, "FLAG", original.evidence)
        bucket_ms = bucket_s * 1000
        assert store.hit_counts(where, bucket_ms) == dict(
            Counter((epoch_ms(h["ts"]) // bucket_ms * bucket_ms, h["rule_id"]) for h in expected))
        per_account = Counter(h["account_id"] for h in expected)
        top = store.top_accounts(where, 2)
        assert [(r["account_id"], r["hits"]) for r in top] == sorted(
            per_account.items(), key=lambda item: (-item[1], item[0]))[:2]
        for row in top:
            mine = [h for h in expected if h["account_id"] == row["account_id"]]
            assert row["rules"] == len({h["rule_id"] for h in mine})
            assert row["last_ts"] == max(h["ts"] for h in mine)
    finally:
        store.close()


def test_the_default_aggregates_page_through_find_hits(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The interface's defaults (what gremlite and Neptune use) read past the first page."""
    from chalicelib.stores import graph_base

    hits = [make_hit(n, ACCOUNTS[n % 3], RULES[n % 2], "enforce", TIMES[n % 5]) for n in range(2500)]
    store.write_hits(hits)
    store.commit()
    counts = graph_base.GraphStore.hit_counts(store, HitFilter(), 86_400_000)
    assert sum(counts.values()) == 2500
    top = graph_base.GraphStore.top_accounts(store, HitFilter(rule_id="r1"), 10)
    assert sum(r["hits"] for r in top) == 1250
    monkeypatch.setattr(graph_base, "AGGREGATE_SCAN_LIMIT", 1000)
    assert sum(graph_base.GraphStore.hit_counts(store, HitFilter(), 86_400_000).values()) == 1000  # bounded
