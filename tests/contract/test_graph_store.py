"""The GraphStore contract, run on every embedded backend (SQLite tables and gremlite) and checked
against a brute-force Python model of the graph: vertices with first_seen = min, relationships with
first_seen = min and last_seen = max, whatever the batching, replay or process restart."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.entities import RELATIONSHIPS, VERTEX_LABELS, ReachQuery, RelationshipRef, VertexRef, iso_ms
from chalicelib.events import Transaction
from chalicelib.hits import EdgeEnd, Hit, HitEdge
from chalicelib.stores import GraphStore, GremlinGraphStore, GremliteConnection, SQLiteGraphStore
from tests.strategies import split, transactions

BACKENDS = ("sqlite", "gremlite")

EMAILS = ["e1@x", "e2@x", None]
PHONES = ["p1", "p2", None]


@st.composite
def identity_events(draw: st.DrawFn, index: int) -> Transaction:
    base = draw(transactions(ids=st.just(f"e{index}")))
    return base.model_copy(update={"account_id": draw(st.sampled_from(["a", "b", "c", "d", "e"])),
                                   "email": draw(st.sampled_from(EMAILS)), "phone": draw(st.sampled_from(PHONES)),
                                   "merchant_id": draw(st.sampled_from(["m1", "m2", None]))})


@st.composite
def event_batches(draw: st.DrawFn) -> tuple[list[Transaction], list[int]]:
    size = draw(st.integers(1, 25))
    stream = [draw(identity_events(i)) for i in range(size)]
    points = sorted(draw(st.sets(st.integers(1, max(1, size - 1)), max_size=4)))
    return stream, [p for p in points if 0 < p < size]


def open_store(backend: str, directory: Path) -> GraphStore:
    if backend == "sqlite":
        return SQLiteGraphStore(directory / "entity-graph.sqlite")
    return GremlinGraphStore(GremliteConnection(directory / "graph.sqlite"))


Contents = tuple[dict[VertexRef, str], dict[RelationshipRef, tuple[str, str]]]


def graph_contents(store: GraphStore) -> Contents:
    return store.vertex_times(), store.relationship_times()


def model_of(stream: list[Transaction]) -> Contents:
    """Every vertex with the earliest ts it was seen at; every relationship with its earliest and latest."""
    vertices: dict[VertexRef, str] = {}
    edges: dict[RelationshipRef, tuple[str, str]] = {}
    for e in stream:
        seen = iso_ms(e.ts)
        ends = [VertexRef("Account", e.account_id)]
        for field, label in RELATIONSHIPS.items():
            value = e.get(field)
            if value is not None:
                target = VertexRef(VERTEX_LABELS[field], value)
                ends.append(target)
                ref = RelationshipRef(e.account_id, label, target)
                first, last = edges.get(ref, (seen, seen))
                edges[ref] = (min(first, seen), max(last, seen))
        for v in ends:
            vertices[v] = min(seen, vertices.get(v, seen))
    return vertices, edges


@pytest.mark.parametrize("backend", BACKENDS)
@given(event_batches(), st.data())
@settings(max_examples=25)
def test_entity_upserts_match_the_model_and_replay_adds_nothing(backend: str,
                                                                batches: tuple[list[Transaction], list[int]],
                                                                data: st.DataObject) -> None:
    stream, points = batches
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        store = open_store(backend, path)
        for batch in split(stream, points):
            store.write_entities(batch)
            store.commit()
        expected = model_of(stream)
        assert graph_contents(store) == expected
        # Replay a drawn batch in the same container and in a cold one (no memory of writes).
        replayed = data.draw(st.sampled_from(split(stream, points)))
        store.write_entities(replayed)
        store.commit()
        store.close()
        cold = open_store(backend, path)
        assert cold.write_entities(replayed) > 0  # a cold container really sends the upserts...
        cold.commit()
        assert graph_contents(cold) == expected  # ...and they change nothing
        cold.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[GraphStore]:
    graph = open_store(backend, tmp_path)
    yield graph
    graph.close()


def make_hit(hit_id: str, account: str, ts: str, rule: str = "r1", mode: str = "enforce",
             to: EdgeEnd | None = None, kind: str = "velocity") -> Hit:
    return Hit(hit_id, rule, kind, mode, "high", f"ev-{hit_id}", ts, account, "account_id", account, 7, 5,
               "v1", HitEdge("VELOCITY_1M", EdgeEnd("account_id", account), to or EdgeEnd("account_id", account)),
               {"count": 7, "event_ids": ["x"]})


def test_hit_edges_carry_their_properties_and_upsert_by_hit_id(store: GraphStore, backend: str,
                                                               tmp_path: Path) -> None:
    store.write_entities([Transaction(event_id="e", ts=0, account_id="a", amount=1, ip="1.2.3.4")])
    hit = make_hit("h1", "a", "2026-11-01T10:00:00.000Z", to=EdgeEnd("ip", "1.2.3.4"))
    assert store.write_hits([hit, hit]) == 1
    store.commit()
    assert store.hit_edges_of(["a"]) == [{
        "label": "VELOCITY_1M", "to_label": "IP", "to": "1.2.3.4", "hit_id": "h1", "rule_id": "r1",
        "kind": "velocity", "mode": "enforce", "severity": "high", "event_id": "ev-h1", "account_id": "a",
        "ts": "2026-11-01T10:00:00.000Z", "value": 7.0, "threshold": 5.0, "ruleset_version": "v1"}]
    assert store.counts() == {"vertices": 2, "edges": 2}
    store.close()
    cold = open_store(backend, tmp_path)
    cold.write_hits([hit])  # a redelivery in a new container
    cold.commit()
    assert cold.counts() == {"vertices": 2, "edges": 2}
    assert len(cold.hit_edges_of(["a"])) == 1
    cold.close()


def test_rollback_forgets_what_was_not_committed(store: GraphStore) -> None:
    store.write_entities([Transaction(event_id="e", ts=0, account_id="a", amount=1, email="x@y")])
    store.rollback()
    assert store.counts()["vertices"] == 0
    assert store.write_entities([Transaction(event_id="e", ts=0, account_id="a", amount=1, email="x@y")]) == 3
    store.commit()
    assert store.counts()["vertices"] == 2


def bfs_model(stream: list[Transaction], via: list[str], seed: str, hops: int,
              cap: int | None = None) -> dict[str, int]:
    ident_accounts: dict[tuple[str, str], set[str]] = defaultdict(set)
    account_idents: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for e in stream:
        for field in via:
            if e.get(field) is not None:
                ident_accounts[(field, e.get(field))].add(e.account_id)
                account_idents[e.account_id].add((field, e.get(field)))
    seen, frontier = {seed: 0}, [seed]
    for hop in range(1, hops + 1):
        nxt = []
        for account in frontier:
            for ident in account_idents[account]:
                if cap is not None and len(ident_accounts[ident]) > cap:
                    continue  # an identifier shared too widely (an office IP) is not followed
                for other in ident_accounts[ident]:
                    if other not in seen:
                        seen[other] = hop
                        nxt.append(other)
        frontier = nxt
    return seen


@pytest.mark.parametrize("backend", BACKENDS)
@given(event_batches(), st.integers(1, 3), st.sampled_from([["email"], ["phone"], ["email", "phone"]]))
@settings(max_examples=25)
def test_reach_and_rings_match_the_model(backend: str, batches: tuple[list[Transaction], list[int]], hops: int,
                                         via: list[str]) -> None:
    stream, _ = batches
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(backend, Path(tmp))
        store.write_entities(stream)
        store.commit()
        accounts = sorted({e.account_id for e in stream})
        reach = store.reach(accounts, via, hops)
        for account in accounts:
            assert reach[account].hops == bfs_model(stream, via, account, hops)
        # rings: connected components (unbounded hops) of accounts that share something
        components = {frozenset(bfs_model(stream, via, a, 99)) for a in accounts}
        expected = sorted((sorted(c) for c in components if len(c) >= 2), key=lambda c: (-len(c), c[0]))
        assert [ring.accounts for ring in store.rings(via)] == expected
        store.close()


def test_hits_for_accounts_filters_by_account_and_time(store: GraphStore) -> None:
    store.write_entities([Transaction(event_id=f"e{a}", ts=0, account_id=a, amount=1) for a in "abc"])
    hits = [make_hit("h1", "a", "2026-11-01T10:00:00.000Z"), make_hit("h2", "a", "2026-11-01T11:00:00.000Z"),
            make_hit("h3", "b", "2026-11-01T12:00:00.000Z", mode="shadow"),
            make_hit("h4", "c", "2026-11-01T12:00:00.000Z")]
    store.write_hits(hits)
    store.commit()
    found = store.hits_for_accounts(["a", "b"], "2026-11-01T10:00:00.000Z")
    assert [(h.hit_id, h.account_id, h.mode) for h in found] == [("h2", "a", "enforce"), ("h3", "b", "shadow")]


def test_account_view_shows_entities_neighbours_and_hits(store: GraphStore) -> None:
    store.write_entities([
        Transaction(event_id="1", ts=0, account_id="a", amount=1, email="shared@x", ip="1.1.1.1", merchant_id="m"),
        Transaction(event_id="2", ts=0, account_id="b", amount=1, email="shared@x"),
        Transaction(event_id="3", ts=0, account_id="c", amount=1, merchant_id="m"),
    ])
    store.write_hits([make_hit("h1", "b", "2026-11-01T10:00:00.000Z")])
    store.commit()
    view = store.account_view("a", hops=1)
    assert view["found"] is True
    assert {(e["relationship"], e["key"]) for e in view["entities"]} == {
        ("HAS_EMAIL", "shared@x"), ("USES_IP", "1.1.1.1"), ("PAYS", "m")}
    assert view["accounts"] == [{"account": "a", "hops": 0}, {"account": "b", "hops": 1}]  # c only shares a merchant
    assert [h["hit_id"] for h in view["hits"]] == ["h1"]
    assert store.account_view("nobody")["found"] is False


@pytest.mark.parametrize("backend", BACKENDS)
@given(event_batches(), st.integers(2, 4), st.data())
@settings(max_examples=20)
def test_a_batch_neighbourhood_matches_the_model(backend: str, batches: tuple[list[Transaction], list[int]],
                                                 cap: int, data: st.DataObject) -> None:
    """Several queries in one walk (with an identifier cap), and the hits of everyone reached."""
    stream, _ = batches
    accounts = sorted({e.account_id for e in stream})
    seeds = data.draw(st.lists(st.sampled_from([*accounts, "stranger"]), min_size=1, max_size=4))
    hits = [make_hit(f"h{i}", data.draw(st.sampled_from(accounts)), f"2026-11-01T1{i % 10}:00:00.000Z")
            for i in range(data.draw(st.integers(0, 6)))]
    queries = [ReachQuery(("email",), 1), ReachQuery(("email", "phone"), 2, cap)]
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(backend, Path(tmp))
        store.write_entities(stream)
        store.write_hits(hits)
        store.commit()
        view = store.neighbourhood(seeds, queries, "2026-11-01T12:00:00.000Z")
        store.close()
    reached = set(seeds)
    for query in queries:
        for seed in set(seeds):
            expected = bfs_model(stream, list(query.via), seed, query.max_hops, query.max_accounts_per_identifier)
            expected = expected if seed in accounts else {}
            assert view.reach[query][seed].hops == expected
            reached |= expected.keys()
    assert [h.hit_id for h in view.hits] == [h.hit_id for h in sorted(hits, key=lambda h: (h.ts, h.hit_id))
                                             if h.account_id in reached and h.ts > "2026-11-01T12:00:00.000Z"]


def test_with_a_granularity_last_seen_is_never_more_than_that_behind(tmp_path: Path) -> None:
    """Neptune's setting, on gremlite: first_seen exact, last_seen at most the granularity behind."""
    granularity = 3_600_000
    store = GremlinGraphStore(GremliteConnection(tmp_path / "g.sqlite"), last_seen_granularity_ms=granularity)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    stream = [Transaction(event_id=f"e{i}", ts=start + timedelta(minutes=7 * i), account_id=f"a{i % 3}", amount=1,
                          email=f"u{i % 2}@x") for i in range(60)]
    for batch in split(stream, list(range(5, 60, 5))):
        store.write_entities(batch)
        store.commit()
    stored = store.relationship_times()
    _, expected = model_of(stream)
    assert stored.keys() == expected.keys()
    lags = []
    for ref, (first, last) in expected.items():
        assert stored[ref][0] == first
        lag = datetime.fromisoformat(last) - datetime.fromisoformat(stored[ref][1])
        assert timedelta(0) <= lag <= timedelta(milliseconds=granularity)
        lags.append(lag)
    assert max(lags) > timedelta(0)  # the granularity did save writes
    store.close()


def component_model(stream: list[Transaction], via: list[str], seed: str, hops: int, cap: int | None,
                    max_accounts: int | None, closed: bool) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """The closed, bounded walk read by brute force: accounts in (hop, then (label, key), then
    account) order until `max_accounts`; the followed identifiers of every account expanded, and
    with `closed` of the last hop's accounts too."""
    ident_accounts: dict[tuple[str, str], set[str]] = defaultdict(set)
    account_idents: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for e in stream:
        for field in via:
            if e.get(field) is not None:
                key = (VERTEX_LABELS[field], e.get(field))
                ident_accounts[key].add(e.account_id)
                account_idents[e.account_id].add(key)
    if seed not in {e.account_id for e in stream}:
        return {}, set()

    def followed(account: str) -> list[tuple[str, str]]:
        return sorted(i for i in account_idents[account] if cap is None or len(ident_accounts[i]) <= cap)

    seen, frontier, links = {seed: 0}, [seed], set()
    for hop in range(1, hops + 1):
        nxt = []
        for account in frontier:
            for ident in followed(account):
                links.add(ident)
                for other in sorted(ident_accounts[ident]):
                    if other not in seen and (max_accounts is None or len(seen) < max_accounts):
                        seen[other] = hop
                        nxt.append(other)
        frontier = nxt
    if closed:
        for account in frontier:
            links.update(followed(account))
    return seen, links


@pytest.mark.parametrize("backend", BACKENDS)
@given(event_batches(), st.integers(1, 3), st.sampled_from([None, 2, 3]), st.sampled_from([None, 2, 3]),
       st.booleans(), st.data())
@settings(max_examples=25)
def test_a_closed_bounded_walk_matches_the_model(backend: str, batches: tuple[list[Transaction], list[int]],
                                                 hops: int, cap: int | None, max_accounts: int | None,
                                                 closed: bool, data: st.DataObject) -> None:
    """The component walk linked_component rules use: bounded by max_accounts, and `closed` reads
    the links among the last hop's accounts - with one read per hop plus one for the closure."""
    stream, _ = batches
    accounts = sorted({e.account_id for e in stream})
    seeds = data.draw(st.lists(st.sampled_from([*accounts, "stranger"]), min_size=1, max_size=3))
    via = ["email", "phone"]
    query = ReachQuery(tuple(via), hops, cap, closed=closed, max_accounts=max_accounts)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(backend, Path(tmp))
        store.write_entities(stream)
        store.commit()
        reads: list[int] = []
        original = store.identifiers_of

        def counted(wanted: Any, fields: Any) -> Any:
            reads.append(1)
            return original(wanted, fields)

        store.identifiers_of = counted  # type: ignore[method-assign]
        reach = store.reach_many(seeds, [query])[query]
        store.close()
    assert len(reads) <= hops + (1 if closed else 0)
    for seed in set(seeds):
        hops_expected, links_expected = component_model(stream, via, seed, hops, cap, max_accounts, closed)
        assert reach[seed].hops == hops_expected
        assert set(reach[seed].identifiers) == links_expected
        for (label, key), ident in reach[seed].identifiers.items():  # full membership, for the weights
            assert set(ident.accounts) == {e.account_id for e in stream if e.get(FIELD_OF[label]) == key}


FIELD_OF = {label: field for field, label in VERTEX_LABELS.items()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_rings_rank_a_doubly_linked_group_above_a_longer_chain_of_coincidences(backend: str, tmp_path: Path) -> None:
    chain = [Transaction(event_id=f"c{i}", ts=0, account_id=f"c{i}", amount=1,
                         email=f"e{i // 2}@x" if i % 2 == 0 else f"e{(i - 1) // 2}@x") for i in range(8)]
    chain += [Transaction(event_id=f"d{i}", ts=0, account_id=f"c{i}", amount=1, email=f"f{i}@x")
              for i in range(1, 7, 2)] + [Transaction(event_id=f"g{i}", ts=0, account_id=f"c{i + 1}", amount=1,
                                                      email=f"f{i}@x") for i in range(1, 7, 2)]
    ring = [Transaction(event_id=f"r{i}", ts=0, account_id=f"r{i}", amount=1, email="ring@x", phone="1000")
            for i in range(5)]
    store = open_store(backend, tmp_path)
    store.write_entities(chain + ring)
    store.commit()
    by_size = store.rings(["email", "phone"], rank="size")
    by_cohesion = store.rings(["email", "phone"], rank="cohesion")
    store.close()
    assert [len(r.accounts) for r in by_size] == [8, 5]
    assert by_cohesion[0].accounts == [f"r{i}" for i in range(5)]
    assert by_cohesion[0].cohesion == pytest.approx(1.25) and by_cohesion[1].cohesion == pytest.approx(0.5)
    with pytest.raises(ValueError):
        SQLiteGraphStore(tmp_path / "x.sqlite").rings(["email"], rank="alphabet")


@pytest.mark.parametrize("backend", BACKENDS)
def test_closing_a_walk_reads_the_links_of_its_last_hop(backend: str, tmp_path: Path) -> None:
    store = open_store(backend, tmp_path)
    store.write_entities([Transaction(event_id="1", ts=0, account_id="a", amount=1, email="e1"),
                          Transaction(event_id="2", ts=0, account_id="b", amount=1, email="e1", phone="p2"),
                          Transaction(event_id="3", ts=0, account_id="c", amount=1, email="e1", phone="p2"),
                          Transaction(event_id="4", ts=0, account_id="d", amount=1, phone="p2")])
    store.commit()
    open_query = ReachQuery(("email", "phone"), 1)
    closed = ReachQuery(("email", "phone"), 1, closed=True, max_accounts=3)
    reach = store.reach_many(["a"], [open_query, closed])
    store.close()
    assert set(reach[open_query]["a"].identifiers) == {("Email", "e1")}
    assert reach[open_query]["a"].hops == {"a": 0, "b": 1, "c": 1}
    # b and c also share p2 (which d has too: it is outside, bounded by max_accounts and hops)
    assert set(reach[closed]["a"].identifiers) == {("Email", "e1"), ("Phone", "p2")}
    assert reach[closed]["a"].hops == {"a": 0, "b": 1, "c": 1}
    assert reach[closed]["a"].identifiers[("Phone", "p2")].accounts == ("b", "c", "d")


def uses_model(stream: list[Transaction]) -> dict[RelationshipRef, int]:
    """Per relationship: the number of distinct events (by event_id) that used it."""
    users: dict[RelationshipRef, set[str]] = defaultdict(set)
    for e in stream:
        for field, label in RELATIONSHIPS.items():
            value = e.get(field)
            if value is not None:
                users[RelationshipRef(e.account_id, label, VertexRef(VERTEX_LABELS[field], value))].add(e.event_id)
    return {ref: len(ids) for ref, ids in users.items()}


@pytest.mark.parametrize("backend", BACKENDS)
@given(event_batches(), st.data())
@settings(max_examples=20)
def test_use_counts_are_exact_whatever_the_batching_replay_or_rollback(backend: str,
                                                                       batches: tuple[list[Transaction], list[int]],
                                                                       data: st.DataObject) -> None:
    stream, points = batches
    parts = split(stream, points)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        store = open_store(backend, path)
        for batch in parts:
            store.write_entities(batch)
            if data.draw(st.booleans(), label="roll back once first"):
                store.rollback()  # a batch that failed half-way, then delivered again
                store.write_entities(batch)
            store.commit()
        replayed = data.draw(st.sampled_from(parts), label="replayed batch")
        store.write_entities(replayed)  # redelivered in the same container
        store.commit()
        store.close()
        cold = open_store(backend, path)
        cold.write_entities(replayed)  # and in a cold one
        cold.commit()
        expected = uses_model(stream)
        assert cold.relationship_uses() == expected
        # shares: uses over the account's uses of any identifier of that relationship label
        accounts = sorted({e.account_id for e in stream})
        for account, idents in cold.identifiers_of(accounts, ["email", "phone"]).items():
            for ident in idents:
                label = {"Email": "HAS_EMAIL", "Phone": "HAS_PHONE"}[ident.label]
                for member, uses, share in zip(ident.accounts, ident.uses, ident.shares, strict=True):
                    total = sum(n for ref, n in expected.items() if ref.account == member and ref.label == label)
                    assert uses == expected[RelationshipRef(member, label, VertexRef(ident.label, ident.key))]
                    assert share == pytest.approx(uses / total)
            assert account in accounts
        cold.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_use_counts_are_exact_with_concurrent_writers_of_overlapping_batches(backend: str, tmp_path: Path) -> None:
    """Four writers (each its own store, as separate containers) write overlapping redeliveries of
    one stream at once: every event is counted once."""
    import threading

    start = datetime(2026, 11, 1, tzinfo=UTC)
    stream = [Transaction(event_id=f"e{i}", ts=start + timedelta(seconds=i), account_id=f"a{i % 4}", amount=1,
                          email=f"m{i % 3}@x", phone=f"p{i % 2}") for i in range(120)]
    open_store(backend, tmp_path).close()  # create the files once
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        store = open_store(backend, tmp_path)
        try:
            for begin in range(offset, len(stream) + offset, 20):
                batch = [stream[i % len(stream)] for i in range(begin, begin + 30)]  # overlapping
                store.write_entities(batch)
                store.commit()
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(k * 7,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    store = open_store(backend, tmp_path)
    assert store.relationship_uses() == uses_model(stream)
    store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_walks_and_rings_follow_strong_links_only(backend: str, tmp_path: Path) -> None:
    """`a` and `b` use one e-mail on every event; `c` used it once among four e-mails: with a
    share floor of 0.6, `c` is not reached and not in the ring, whatever the reader."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    stream = [Transaction(event_id=f"{a}{i}", ts=start + timedelta(minutes=i), account_id=a, amount=1,
                          email="ring@x" if a != "c" or i == 0 else f"c{i}@x")
              for a in ("a", "b", "c") for i in range(4)]
    store = open_store(backend, tmp_path)
    store.write_entities(stream)
    store.commit()
    weak = ReachQuery(("email",), 2)
    strong_only = ReachQuery(("email",), 2, min_link_share=0.6)
    reach = store.reach_many(["a", "c"], [weak, strong_only])
    rings = store.rings(["email"], min_link_share=0.6)
    all_rings = store.rings(["email"])
    store.close()
    assert set(reach[weak]["a"].hops) == {"a", "b", "c"}
    assert set(reach[strong_only]["a"].hops) == {"a", "b"}
    assert set(reach[strong_only]["c"].hops) == {"c"}  # its own link is weak: it follows nothing
    assert [r.accounts for r in rings] == [["a", "b"]] and [r.accounts for r in all_rings] == [["a", "b", "c"]]
    ident = reach[weak]["a"].identifiers[("Email", "ring@x")]
    assert dict(zip(ident.accounts, ident.shares, strict=True)) == {"a": 1.0, "b": 1.0, "c": 0.25}
