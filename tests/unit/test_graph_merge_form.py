"""The Neptune write path in merge form, without Neptune: the exact Gremlin each request carries,
its rows, how many requests a batch costs cold and warm, what a restart sends again, and that a
conflicting request is retried whole."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gremlin_python.driver.protocol import GremlinServerError
from gremlin_python.driver.remote_connection import RemoteConnection, RemoteTraversal
from gremlin_python.process.traversal import Direction, T

from chalicelib.entities import ReachQuery, entities_of
from chalicelib.events import Transaction
from chalicelib.hits import EdgeEnd, Hit, HitEdge
from chalicelib.stores import GremlinGraphStore, GremliteConnection, NeptuneConnection
from chalicelib.stores.gremlin_connection import NeptuneSettings, RetryPolicy
from chalicelib.stores.gremlin_graph import MERGE_ROWS
from fraudtools.gremlin_recording import RecordingConnection

VERTICES = ("g.inject(rows).unfold().as('row').select('first').as('first').select('row')"
            ".mergeV(__.select('match')).option(Merge.onCreate,__.select('create'))"
            ".sideEffect(__.where(gt('first')).by('first_seen').by()"
            ".property(Cardinality.single,'first_seen',__.select('first')))")
RELATIONSHIPS = ("g.inject(rows).unfold().as('row').select('first').as('first').select('row')"
                 ".select('last').as('last').select('row')"
                 ".mergeE(__.select('match')).option(Merge.onCreate,__.select('create'))"
                 ".sideEffect(__.where(gt('first')).by('first_seen').by().property('first_seen',__.select('first')))"
                 ".sideEffect(__.where(lt('last')).by('last_seen').by().property('last_seen',__.select('last')))")
HITS = "g.inject(rows).unfold().mergeE(__.select('match')).option(Merge.onCreate,__.select('create'))"


def packed(edges: str) -> str:
    """One request merging its vertices, then - after the fold() barrier - its edges."""
    return VERTICES + ".fold().constant(rows).unfold()" + edges.removeprefix("g.inject(rows).unfold()")


START = datetime(2026, 11, 1, tzinfo=UTC)


def population(n: int, offset: int = 0, accounts: int = 300, seed: int = 1) -> list[Transaction]:
    rng = random.Random(seed)
    return [Transaction(event_id=f"e{offset + i}", ts=START + timedelta(seconds=offset + i),
                        account_id=f"a{(a := rng.randrange(accounts))}", amount=5, merchant_id=f"m{rng.randrange(60)}",
                        email=f"u{a}@x", phone=f"+49{a}", card_id=f"c{a}", device_id=f"d{a}", ip=f"10.0.0.{a % 250}")
            for i in range(n)]


def merge_store(granularity_ms: int = 3_600_000) -> tuple[GremlinGraphStore, RecordingConnection]:
    wire = RecordingConnection()
    return GremlinGraphStore(wire, write_form="merge", last_seen_granularity_ms=granularity_ms), wire


def test_each_request_is_one_merge_traversal_over_injected_rows() -> None:
    store, wire = merge_store()
    event = Transaction(event_id="e1", ts=START, account_id="a1", amount=5, email="x@y")
    store.write_entities([event])
    hit = Hit("h1", "r1", "velocity", "enforce", "high", "e1", "2026-11-01T00:00:00.000Z", "a1", "account_id", "a1",
              6, 5, "v1", HitEdge("VELOCITY", EdgeEnd("account_id", "a1"), EdgeEnd("email", "x@y")), {})
    store.write_hits([hit])
    store.commit()
    assert [(r.text, r.rows) for r in wire.requests] == [(packed(RELATIONSHIPS), 3), (HITS, 1)]
    to_new_vertex = Hit("h2", "r2", "velocity", "enforce", "high", "e1", "2026-11-01T00:00:00.000Z", "a1",
                        "account_id", "a1", 6, 5, "v1", HitEdge("FROM_IP", EdgeEnd("account_id", "a1"),
                                                                EdgeEnd("ip", "203.0.113.9")), {})
    wire.requests.clear()
    store.write_hits([to_new_vertex, hit])  # h1 is remembered; h2's IP vertex is new
    assert [(r.text, r.rows) for r in wire.requests] == [(packed(HITS), 2)]


def test_rows_carry_natural_key_ids_and_the_times() -> None:
    from chalicelib.stores.gremlin_graph import _relationship_row, _vertex_row

    batch = entities_of([Transaction(event_id="e1", ts=START, account_id="a1", amount=5, email="x@y")])
    (ref, (first, last)), = batch.relationships.items()
    assert _relationship_row(ref, first, last) == {
        "match": {T.id: '["HAS_EMAIL","a1","Email","x@y"]', T.label: "HAS_EMAIL",
                  Direction.OUT: "Account:a1", Direction.IN: "Email:x@y"},
        "create": {"first_seen": "2026-11-01T00:00:00.000Z", "last_seen": "2026-11-01T00:00:00.000Z"},
        "first": "2026-11-01T00:00:00.000Z", "last": "2026-11-01T00:00:00.000Z"}
    vertex = next(v for v in batch.vertices if v.label == "Email")
    assert _vertex_row(vertex, first) == {"match": {T.id: "Email:x@y", T.label: "Email"},
                                          "create": {"key": "x@y", "first_seen": first}, "first": first}


def test_a_cold_batch_of_1000_events_is_a_few_requests_of_at_most_200_rows() -> None:
    store, wire = merge_store()
    events = population(1000)
    batch = entities_of(events)
    store.write_entities(events)
    store.commit()
    rows = len(batch.vertices) + len(batch.relationships)
    assert len(wire.requests) == -(-rows // MERGE_ROWS) <= 30
    assert all(0 < r.rows <= MERGE_ROWS for r in wire.requests)
    assert sum(r.rows for r in wire.requests) == rows
    # a fixed, small number of steps whatever the rows
    assert {r.text for r in wire.requests} <= {VERTICES, RELATIONSHIPS, packed(RELATIONSHIPS)}


def test_a_warm_batch_sends_only_what_is_new_or_an_hour_later() -> None:
    store, wire = merge_store()
    first = entities_of(population(1000))
    store.write_entity_batch(first)
    store.commit()
    wire.requests.clear()
    second = entities_of(population(1000, offset=1000, seed=2))  # the same accounts 17 minutes later
    store.write_entity_batch(second)
    store.commit()
    new = (second.vertices.keys() - first.vertices.keys()) | (second.relationships.keys() - first.relationships.keys())
    assert sum(r.rows for r in wire.requests) == len(new) > 0  # new vertices and pairs (mostly account-merchant)
    later = population(1000, offset=10_000, seed=3)  # hours on: every last_seen refresh is due
    wire.requests.clear()
    store.write_entities(later)
    store.commit()
    batch = entities_of(later)
    new_vertices = batch.vertices.keys() - first.vertices.keys() - second.vertices.keys()
    assert sum(r.rows for r in wire.requests) == len(batch.relationships) + len(new_vertices)


def test_a_restarted_container_sends_every_relationship_again_so_the_server_takes_min_and_max() -> None:
    store, wire = merge_store()
    events = population(200)
    store.write_entities(events)
    store.commit()
    restarted, wire_after = merge_store()
    restarted.write_entities(events)
    restarted.commit()
    assert [(r.text, r.rows) for r in wire_after.requests] == [(r.text, r.rows) for r in wire.requests]


def test_an_earlier_first_seen_is_always_sent_whatever_the_granularity() -> None:
    store, wire = merge_store()
    late = Transaction(event_id="e2", ts=START + timedelta(minutes=5), account_id="a1", amount=5, email="x@y")
    early = Transaction(event_id="e1", ts=START, account_id="a1", amount=5, email="x@y")
    store.write_entities([late])
    store.commit()
    wire.requests.clear()
    store.write_entities([early])  # arrives later, happened earlier: first_seen must move back
    assert [(r.text, r.rows) for r in wire.requests] == [(packed(RELATIONSHIPS), 3)]


def test_reads_for_a_batch_are_one_request_per_hop_plus_one_for_hits(tmp_path: Path) -> None:
    events = population(1000)
    local = GremliteConnection(tmp_path / "g.sqlite")
    GremlinGraphStore(local).write_entities(events)
    local.commit()
    wire = RecordingConnection(inner=local)
    store = GremlinGraphStore(wire, write_form="merge")
    queries = [ReachQuery(("email", "phone", "device_id"), 1),
               ReachQuery(("email", "phone", "device_id", "card_id"), 2)]
    view = store.neighbourhood({e.account_id for e in events}, queries, "2026-10-31T00:00:00.000Z")
    assert len(view.reach[queries[1]]) == len({e.account_id for e in events})
    assert len(wire.requests) <= 2 + 1
    assert not any(r.write for r in wire.requests)


def test_a_closed_bounded_walk_costs_one_more_request_at_most(tmp_path: Path) -> None:
    """The linked_component walk on Neptune's wire: one request per hop, one for the closure,
    one for the hits - and every read's frontier bounded by seeds x max_accounts."""
    # devices shared in groups of 5 and phones in groups of 7: one long chain of overlapping groups
    events = [e.model_copy(update={"device_id": f"d{int(e.account_id[1:]) // 5}",
                                   "phone": f"p{(int(e.account_id[1:]) + 2) // 7}"}) for e in population(1000)]
    local = GremliteConnection(tmp_path / "g.sqlite")
    GremlinGraphStore(local).write_entities(events)
    local.commit()
    wire = RecordingConnection(inner=local)
    store = GremlinGraphStore(wire, write_form="merge")
    closed = ReachQuery(("email", "phone", "device_id", "card_id"), 3, 20, closed=True, max_accounts=20)
    queries = [ReachQuery(("email", "phone", "device_id"), 2), closed]
    seeds = sorted({e.account_id for e in events})[:50]
    view = store.neighbourhood(seeds, queries, "2026-10-31T00:00:00.000Z")
    sizes = [len(reach.hops) for reach in view.reach[closed].values()]
    assert max(sizes) == 20 and all(size <= 20 for size in sizes)  # the bound is reached and holds
    assert 4 <= len(wire.requests) <= 3 + 1 + 1  # the walk went beyond its first hop
    assert not any(r.write for r in wire.requests)


class ConflictOnce(RemoteConnection):  # type: ignore[misc]
    """Neptune answering the first request with ConcurrentModificationException."""

    def __init__(self) -> None:
        super().__init__("conflict", "g")
        self.sent: list[Any] = []

    def submit(self, bytecode: Any) -> RemoteTraversal:
        self.sent.append(bytecode)
        if len(self.sent) == 1:
            raise GremlinServerError({"code": 500, "message": '{"code":"ConcurrentModificationException"}',
                                      "attributes": {}})
        return RemoteTraversal(iter([]))

    def close(self) -> None:
        pass


@pytest.mark.parametrize("write_form", ["merge", "coalesce"])
def test_a_conflicting_request_is_retried_whole(write_form: str) -> None:
    remote = ConflictOnce()
    neptune = NeptuneConnection(NeptuneSettings("db.example", 8182, "us-east-1", iam_auth=False),
                                driver=lambda url, source, headers: remote, policy=RetryPolicy(attempts=3),
                                sleep=lambda s: None)
    store = GremlinGraphStore(neptune, write_form=write_form)  # type: ignore[arg-type]
    store.write_entities([Transaction(event_id="e1", ts=START, account_id="a1", amount=5, email="x@y")])
    store.commit()
    assert len(remote.sent) >= 2 and remote.sent[1] is remote.sent[0]


def test_last_seen_refreshes_are_spread_between_half_the_granularity_and_all_of_it() -> None:
    store, _ = merge_store(granularity_ms=3_600_000)
    refs = list(entities_of(population(300)).relationships)
    thresholds = [store._refresh_after(ref) for ref in refs]
    assert all(1_800_000 <= t <= 3_600_000 for t in thresholds)
    assert max(thresholds) - min(thresholds) > 1_200_000  # spread, not one instant for all
    assert merge_store(granularity_ms=0)[0]._refresh_after(refs[0]) == 0
