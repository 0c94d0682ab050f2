"""The TimeSeriesStore contract, run on SQLite (file and in-memory) and InfluxDB (a real influxd on
loopback). Timestream cannot run offline: its query text and retries are pinned in
tests/unit/test_timestream_queries.py and tests/integration/test_timestream.py."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from chalicelib.events import Transaction
from chalicelib.stores import SQLiteTimeSeriesStore, StoreError, TimeSeriesStore, WriteResult


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "influxdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TimeSeriesStore]:
    if request.param == "influxdb":  # a real influxd on loopback (tests/influx_server.py)
        yield request.getfixturevalue("influx_store")
        return
    backend = SQLiteTimeSeriesStore(tmp_path / "ts.sqlite" if request.param == "sqlite-file" else ":memory:")
    yield backend
    backend.close()


def tx(event_id: str, ts_s: int, **fields: object) -> Transaction:
    fields.setdefault("account_id", "a")
    fields.setdefault("amount", "10.50")
    return Transaction(event_id=event_id, ts=ts_s * 1000, **fields)


def last_seq(written: WriteResult) -> int:
    """The arrival position of a write's last event (backends number arrivals differently)."""
    return max(p.seq for p in written.pending)


def test_write_is_idempotent_and_the_first_delivery_wins(store: TimeSeriesStore) -> None:
    first = store.write([tx("e1", 1), tx("e2", 2), tx("e1", 3, amount=99)])
    assert first.new_ids == {"e1", "e2"}
    assert [(p.event.event_id, p.event.amount) for p in first.pending] == [("e1", 10.5), ("e2", 10.5)]
    e1_seq, e2_seq = (p.seq for p in first.pending)
    assert 0 < e1_seq < e2_seq
    if isinstance(store, SQLiteTimeSeriesStore):
        assert (e1_seq, e2_seq) == (1, 2)
    again = store.write([tx("e2", 2, amount=7), tx("e3", 4)])
    assert again.new_ids == {"e3"}
    # e2 is stored but not judged yet, so it is pending again - with its stored content and seq
    assert [(p.event.event_id, str(p.event.amount)) for p in again.pending] == [("e2", "10.50"), ("e3", "10.50")]
    assert again.pending[0].seq == e2_seq < again.pending[1].seq
    store.mark_judged(["e1", "e2", "e3"])
    assert store.write([tx("e1", 1), tx("e3", 4)]).pending == ()


def test_history_selects_by_key_time_range_and_arrival(store: TimeSeriesStore) -> None:
    written = store.write([tx("e1", 10, ip="1"), tx("e2", 20, ip="2"), tx("e3", 30, ip="1"), tx("e4", 5, ip="1"),
                           tx("e5", 40), tx("e6", 20, ip="1")])
    seq = {p.event.event_id: p.seq for p in written.pending}
    got = store.history("ip", ["1"], start_ms=5_000, end_ms=30_000, max_seq=seq["e5"])
    # start is exclusive, end inclusive; e6 arrived after max_seq; e4 at 5 s is outside
    assert [s.event.event_id for s in got] == ["e1", "e3"]
    assert [s.seq for s in got] == [seq["e1"], seq["e3"]] and got[0].ts_ms == 10_000
    assert store.history("ip", [], 0, 10**12, seq["e6"]) == []


def test_history_min_seq_is_an_exclusive_lower_bound_on_arrival(store: TimeSeriesStore) -> None:
    seqs = [p.seq for p in store.write([tx(f"e{i}", i, ip="1") for i in range(1, 7)]).pending]
    got = store.history("ip", ["1"], 0, 10**12, max_seq=seqs[4], min_seq=seqs[1])
    assert [s.seq for s in got] == seqs[2:5]
    assert [s.seq for s in store.history("ip", ["1"], 0, 10**12, seqs[5], min_seq=0)] == seqs
    assert store.history("ip", ["1"], 0, 10**12, seqs[5], min_seq=seqs[5]) == []


def test_exact_arrival_means_a_delta_read_returns_what_was_stored_after_the_mark(store: TimeSeriesStore) -> None:
    if not type(store).exact_arrival:
        pytest.skip("this backend does not claim exact arrival")
    store.write([tx("e1", 10, ip="1"), tx("e2", 5, ip="1")])
    mark = max(s.seq for s in store.history("ip", ["1"], 0, 10**12, 10**18))
    store.write([tx("e3", 1, ip="1"), tx("e4", 50, ip="1"), tx("e1", 99, ip="1")])  # e1 again: not stored
    after = store.history("ip", ["1"], 0, 10**12, 10**18, min_seq=mark)
    assert [s.event.event_id for s in after] == ["e3", "e4"]


def test_observed_since_is_the_time_of_the_first_event_accepted_by_arrival(store: TimeSeriesStore) -> None:
    """The observation start: the ts of the stored event with the lowest seq - not the earliest
    time, and not moved by a redelivery, an earlier-stamped later arrival or the judged mark."""
    assert store.observed_since() is None
    store.write([tx("e1", 50, ip="1"), tx("e2", 10, ip="1")])  # the later time arrives first
    assert store.observed_since() == 50_000
    store.write([tx("e0", 1), tx("e1", 2, amount=99)])  # earlier in time, later in arrival; e1 again
    assert store.observed_since() == 50_000
    store.mark_judged(["e0", "e1", "e2"])
    assert store.observed_since() == 50_000


def test_window_rows_are_history_as_compact_tuples(store: TimeSeriesStore) -> None:
    written = store.write([tx("e1", 1, ip="1", lat=1.5, lon=2.5, attributes={"terminal": 7, "ok": True}),
                           tx("e2", 2, ip="1", amount="0.10"), tx("e3", 3, ip="2")])
    s1, s2, s3 = (p.seq for p in written.pending)
    fields = ("ip", "amount", "lat", "device_id", "attributes.terminal", "attributes.ok", "attributes")
    got = store.window_rows("ip", ["1"], 0, 10**12, s3, fields, min_seq=0)
    assert got == [
        (1000, s1, "e1", "1", Decimal("10.50"), 1.5, None, 7, True, {"terminal": 7, "ok": True}),
        (2000, s2, "e2", "1", Decimal("0.10"), None, None, None, None, {}),
    ]
    # the base class's default (built on history) reads the same
    assert TimeSeriesStore.window_rows(store, "ip", ["1"], 0, 10**12, s3, fields) == got
    assert store.window_rows("ip", ["1"], 0, 10**12, s3, fields, min_seq=s1) == got[1:]


def test_window_rows_hold_what_the_event_holds_for_every_field(store: TimeSeriesStore) -> None:
    # A `where` on any field reads it from these rows: `ts` was NULL on SQLite, so
    # `where: [{field: ts, ...}]` never held in a warm container (issue 18).
    event = tx("e1", 1, ip="1", currency="EUR", merchant_id="m", device_id="d", email="x@example.com",
               phone="5", card_id="c", lat=1.5, lon=2.5, attributes={"tier": "gold"})
    written = store.write([event])
    fields = (*sorted(set(Transaction.model_fields) - {"attributes"}), "attributes.tier")
    [row] = store.window_rows("ip", ["1"], 0, 10**12, written.pending[0].seq, fields)
    assert row[3:] == tuple(event.get(name) for name in fields)


def test_history_by_attribute_key(store: TimeSeriesStore) -> None:
    written = store.write([tx("e1", 1, attributes={"terminal": 7}), tx("e2", 2, attributes={"terminal": "7"}),
                           tx("e3", 3, attributes={"terminal": 8})])
    got = store.history("attributes.terminal", ["7"], 0, 10**12, last_seq(written))
    assert [s.event.event_id for s in got] == ["e1", "e2"]
    assert got[0].event.attributes == {"terminal": 7}


def test_record_values_never_become_query_text(store: TimeSeriesStore) -> None:
    nasty = "x'); DROP TABLE events; --"
    top = last_seq(store.write([tx("e1'--", 1, ip=nasty, account_id=nasty)]))
    assert [s.event.ip for s in store.history("ip", [nasty], 0, 10**12, top)] == [nasty]
    assert [s.event.event_id for s in store.history("account_id", [nasty], 0, 10**12, top)] == ["e1'--"]


def test_unknown_key_fields_are_refused(store: TimeSeriesStore) -> None:
    with pytest.raises(StoreError, match="cannot key history"):
        store.history("amount; DROP TABLE events", ["1"], 0, 1, 1)


def test_round_trip_keeps_every_field(store: TimeSeriesStore) -> None:
    event = Transaction(event_id="e", ts="2026-11-01T10:00:00.123Z", account_id="a", amount="12.3400",
                        currency="EUR", merchant_id="m", ip="1.2.3.4", device_id="d", email="x@y.z",
                        phone="+49", card_id="c", lat=48.1, lon=11.5, attributes={"k": "v", "n": 1.5})
    stored = store.write([event]).pending[0].event
    assert stored == event
