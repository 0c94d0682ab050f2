"""What the SQLite graph store keeps in process is exact: its link mirror (stores/graph_mirror.py)
answers the walks' reads as the SQL reads do, and its memo of the vertices it wrote never holds
back an upsert that would lower a first_seen - whatever the batching, rollbacks, redeliveries,
restarts, and with two stores (two processes' connections) writing the same file in turns. The
reference for reads is a store that never mirrors (`mirror_max_links=0`), opened on the same file
after each step; for vertices, the brute-force model of the contract tests."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.entities import LINKABLE, EntityBatch, RelationshipRef, VertexRef
from chalicelib.events import Transaction
from chalicelib.stores import SQLiteGraphStore
from tests.contract.test_graph_store import model_of
from tests.strategies import transactions

ACCOUNTS = ["a", "b", "c", "d", "e"]
VIAS = [["email"], ["phone"], ["email", "phone"], list(LINKABLE), ["device_id", "card_id", "email"]]


@st.composite
def linked_events(draw: st.DrawFn, index: int) -> Transaction:
    base = draw(transactions(ids=st.just(f"e{index}")))
    pick = st.sampled_from
    return base.model_copy(update={
        "account_id": draw(pick(ACCOUNTS)), "email": draw(pick(["e1@x", "e2@x", None])),
        "phone": draw(pick(["p1", "p2", None])), "device_id": draw(pick(["d1", "d2", None])),
        "card_id": draw(pick(["c1", None])), "ip": draw(pick(["i1", "i2", None])),
        "merchant_id": draw(pick(["m1", None]))})


def sql_answer(path: Path, via: list[str]) -> dict[str, list[tuple[object, ...]]]:
    """identifiers_of every account through a store that reads SQLite only, order-free."""
    store = SQLiteGraphStore(path, mirror_max_links=0)
    try:
        return answer(store, via)
    finally:
        store.close()


def answer(store: SQLiteGraphStore, via: list[str]) -> dict[str, list[tuple[object, ...]]]:
    found = store.identifiers_of([*ACCOUNTS, "nobody"], via)
    return {account: sorted((i.label, i.key, i.accounts, i.uses, i.shares) for i in idents)
            for account, idents in found.items()}


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(1, 6), st.sampled_from(["commit", "rollback", "again"])),
                min_size=1, max_size=8),
       st.data())  # a batch's events are drawn with times out of order, so first_seen moves back
@settings(max_examples=40, deadline=None)
def test_two_writers_in_turns_read_what_sqlite_holds(steps: list[tuple[int, int, str]], data: st.DataObject) -> None:
    """Each step: writer 0 or 1 writes its next few events (or a redelivery of them), reads
    inside its batch (as the pipeline's walk does), then commits or rolls back; after every step
    both writers' reads, inside and outside a batch, equal SQLite's."""
    stream = [data.draw(linked_events(i), label=f"event {i}") for i in range(30)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "entity-graph.sqlite"
        writers = [SQLiteGraphStore(path), SQLiteGraphStore(path)]
        position = 0
        committed: list[Transaction] = []
        try:
            for who, size, end in steps:
                store = writers[who]
                batch = stream[position:position + size] or stream[:size]
                position += size
                via = data.draw(st.sampled_from(VIAS), label="via")
                store.write_entities(batch)
                inside = answer(store, via)
                if end == "rollback":
                    store.rollback()
                    continue
                if end == "again":  # a redelivery in the same batch: counted once
                    store.write_entities(batch)
                    inside = answer(store, via)
                store.commit()
                committed += batch
                assert inside == sql_answer(path, via)
                assert store.vertex_times() == model_of(committed)[0]
                for reader in writers:
                    assert answer(reader, via) == sql_answer(path, via)
            assert writers[steps[0][0]].mirror.fills >= 1  # the reads above went through a mirror
            restarted = SQLiteGraphStore(path)
            restarted.write_entities(stream[:3])  # a cold container redelivers (or writes them first)
            via = list(LINKABLE)
            inside = answer(restarted, via)
            restarted.commit()
            assert inside == answer(restarted, via) == sql_answer(path, via)
            restarted.close()
        finally:
            for store in writers:
                store.close()


def test_a_commit_by_another_connection_is_seen_at_once(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    start = datetime(2026, 11, 1, tzinfo=UTC)
    one, two = SQLiteGraphStore(path), SQLiteGraphStore(path)
    one.write_entities([Transaction(event_id="x1", ts=start, account_id="a", amount=1, email="ring@x")])
    assert [i.accounts for i in one.identifiers_of(["a"], ["email"])["a"]] == [("a",)]
    one.commit()
    assert one.mirror.fills == 1
    two.write_entities([Transaction(event_id="x2", ts=start + timedelta(seconds=1), account_id="b", amount=1,
                                    email="ring@x")])
    two.commit()
    # outside a batch: the mirror is stale, the read goes to SQLite
    assert [i.accounts for i in one.identifiers_of(["a"], ["email"])["a"]] == [("a", "b")]
    one.write_entities([Transaction(event_id="x3", ts=start + timedelta(seconds=2), account_id="c", amount=1,
                                    email="ring@x")])
    found = one.identifiers_of(["a"], ["email"])["a"]  # inside its batch: filled again, with its own write
    assert [(i.accounts, i.uses) for i in found] == [(("a", "b", "c"), (1, 1, 1))]
    assert one.mirror.fills == 2
    one.commit()
    one.close()
    two.close()


def test_writers_that_keep_committing_between_batches_read_sqlite(tmp_path: Path) -> None:
    """Two stores whose batches alternate: after two batches that each found the other's commit,
    a store stops filling its mirror (a scan per batch) and reads SQLite, until a quiet batch."""
    path = tmp_path / "g.sqlite"
    start = datetime(2026, 11, 1, tzinfo=UTC)
    stores = [SQLiteGraphStore(path), SQLiteGraphStore(path)]
    for i in range(12):
        store = stores[i % 2]
        store.write_entities([Transaction(event_id=f"x{i}", ts=start + timedelta(seconds=i), account_id=f"a{i % 3}",
                                          amount=1, email="ring@x")])
        found = store.identifiers_of(["a0"], ["email"])["a0"]
        assert [i.accounts for i in found] == [tuple(sorted({f"a{k % 3}" for k in range(i + 1)}))]
        store.commit()
    assert [s.mirror.fills for s in stores] == [2, 2]
    for _ in range(2):  # the other writer has stopped: filled again once, then kept
        stores[0].write_entities([])
        stores[0].identifiers_of(["a0"], ["email"])
        stores[0].commit()
    assert stores[0].mirror.fills == 3
    for store in stores:
        store.close()


def test_a_target_reached_by_two_relationship_labels_is_read_as_sqlite_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    store = SQLiteGraphStore(path)
    odd = VertexRef("Email", "shared")
    store.write_entity_batch(EntityBatch(
        vertices={VertexRef("Account", "a"): "t", VertexRef("Account", "b"): "t", odd: "t"},
        relationships={RelationshipRef("a", "HAS_EMAIL", odd): ("t", "t"),
                       RelationshipRef("b", "HAS_PHONE", odd): ("t", "t")}))
    via = ["email", "phone"]
    inside = answer(store, via)
    store.commit()
    assert inside == answer(store, via) == sql_answer(path, via)
    assert inside["a"] == [("Email", "shared", ("a", "b"), (0, 0), (0.0, 0.0))]  # one identifier, as SQL merges
    store.close()


def test_a_graph_larger_than_the_limit_is_walked_with_sql(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    start = datetime(2026, 11, 1, tzinfo=UTC)
    store = SQLiteGraphStore(path, mirror_max_links=3)
    store.write_entities([Transaction(event_id=f"x{i}", ts=start, account_id=f"a{i}", amount=1, email="ring@x",
                                      phone=f"p{i}") for i in range(3)])
    assert [i.accounts for i in store.identifiers_of(["a0"], ["email"])["a0"]] == [("a0", "a1", "a2")]
    assert store.mirror.fills == 0 and store.mirror.max_links == 0
    store.commit()
    store.close()


def test_a_mirror_that_grows_past_the_limit_with_the_stores_own_writes_is_let_go(tmp_path: Path) -> None:
    """A long-running writer (replay, a warm container) fills the mirror on a small graph, then
    keeps adding links: past the limit it reads SQLite, with the same answers."""
    path = tmp_path / "g.sqlite"
    start = datetime(2026, 11, 1, tzinfo=UTC)
    store = SQLiteGraphStore(path, mirror_max_links=10)
    for batch in range(6):
        store.write_entities([Transaction(event_id=f"x{batch}-{i}", ts=start, account_id=ACCOUNTS[i],
                                          amount=1, email=f"e{batch}@x", phone=f"p{batch}-{i}") for i in range(3)])
        assert answer(store, ["email", "phone"]) is not None
        store.commit()
        held = store.mirror.current
        assert held is None or len(held) <= 10
    assert store.mirror.fills == 1 and store.mirror.current is None and store.mirror.max_links == 0
    assert answer(store, ["email", "phone"]) == sql_answer(path, ["email", "phone"])
    store.close()


def test_a_vertex_written_in_a_rolled_back_batch_is_written_again(tmp_path: Path) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    store = SQLiteGraphStore(tmp_path / "g.sqlite")
    store.write_entities([Transaction(event_id="x1", ts=start, account_id="a", amount=1, email="m@x")])
    store.rollback()
    later = start + timedelta(hours=1)
    assert store.write_entities([Transaction(event_id="x2", ts=later, account_id="a", amount=1, email="m@x")]) == 3
    store.commit()
    assert store.vertex_times()[VertexRef("Account", "a")] == "2026-11-01T01:00:00.000Z"
    # written and committed: a later sighting is not sent again, an earlier one is
    assert store.write_entities([Transaction(event_id="x3", ts=later + timedelta(hours=1), account_id="a",
                                             amount=1, email="m@x")]) == 1  # the relationship only
    assert store.write_entities([Transaction(event_id="x4", ts=start, account_id="a", amount=1,
                                             email="m@x")]) == 3
    store.commit()
    assert store.vertex_times()[VertexRef("Account", "a")] == "2026-11-01T00:00:00.000Z"
    store.close()
