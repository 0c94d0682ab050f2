"""Timestream query text per rule kind, response parsing with pagination, and rejected records -
with botocore's Stubber on real clients (moto's timestream-query cannot evaluate SQL)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.events import StoredEvent, Transaction
from chalicelib.rules.engine import history_requests
from chalicelib.rules.loader import load_rules_file
from chalicelib.stores import StoreError, TransientStoreError
from chalicelib.stores.timestream import TimestreamTimeSeriesStore, sql_string
from tests.conftest import PROJECT

NAMES = ["account_id", "event_id", "ts_ms", "arrival", "judged", "amount", "currency", "merchant_id", "ip",
         "device_id", "email", "phone", "card_id", "attributes", "lat", "lon"]
COLUMNS = [{"Name": n, "Type": {"ScalarType": "VARCHAR"}} for n in NAMES]


def clients() -> tuple[Any, Any]:
    kwargs = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    return boto3.client("timestream-write", **kwargs), boto3.client("timestream-query", **kwargs)


def row(event_id: str, account: str, ts_ms: int, arrival: int, *, ip: str | None = None, judged: str = "1",
        attributes: str | None = None) -> dict[str, Any]:
    values = {"account_id": account, "event_id": event_id, "ts_ms": str(ts_ms), "arrival": str(arrival),
              "judged": judged, "amount": "12.30", "ip": ip, "attributes": attributes, "lat": "48.1"}
    return {"Data": [{"NullValue": True} if values.get(n) is None else {"ScalarValue": values[n]} for n in NAMES]}


def test_history_query_for_each_key_field_of_the_default_rules() -> None:
    write, query = clients()
    store = TimestreamTimeSeriesStore("fraud", "tx", write_client=write, query_client=query)
    ruleset = load_rules_file(PROJECT / "rules.yaml")
    judged = [StoredEvent(7, Transaction(event_id="e", ts=3_600_000, account_id="o'brien", amount=1, ip="1.2.3.4",
                                         device_id="d", card_id="c"), 3_600_000)]
    texts = {r.key_field: store.history_query(r.key_field, r.keys, r.start_ms, r.end_ms, r.max_seq)
             for r in history_requests(ruleset, judged)}
    assert set(texts) == {"account_id", "ip", "device_id", "card_id"}
    assert texts["account_id"] == (
        'SELECT account_id, event_id, to_milliseconds(time) AS ts_ms, arrival, judged, amount, currency, '
        'merchant_id, ip, device_id, email, phone, card_id, attributes, lat, lon FROM "fraud"."tx" '
        "WHERE measure_name = 'tx' AND account_id IN ('o''brien') "
        "AND time > from_milliseconds(-2588400000) AND time <= from_milliseconds(3600000) "
        "AND arrival <= 7 ORDER BY arrival")  # the longest account window is 30 days (new-device-30d)
    assert "ip IN ('1.2.3.4') AND time > from_milliseconds(3000000)" in texts["ip"]  # ip-fanout-10m
    assert "device_id IN ('d') AND time > from_milliseconds(0)" in texts["device_id"]  # device-fanout-1h
    assert "card_id IN ('c') AND time > from_milliseconds(3000000)" in texts["card_id"]  # card-testing-10m
    attribute = store.history_query("attributes.channel", ["web"], 0, 1, 1)
    assert "json_extract_scalar(attributes, '$.channel') IN ('web')" in attribute


def test_history_query_bounds_arrival_from_below_for_delta_reads() -> None:
    write, query = clients()
    store = TimestreamTimeSeriesStore("db", "tbl", write_client=write, query_client=query)
    assert store.history_query("ip", ["1"], 0, 10, 99, min_seq=42).endswith(
        "AND arrival > 42 AND arrival <= 99 ORDER BY arrival")
    assert "arrival >" not in store.history_query("ip", ["1"], 0, 10, 99)
    assert TimestreamTimeSeriesStore.exact_arrival is False  # write-time arrival: no window cache


def test_values_are_escaped_never_spliced() -> None:
    assert sql_string("x') OR 1=1 --") == "'x'') OR 1=1 --'"
    with pytest.raises(StoreError):
        sql_string("line\nbreak")
    write, query = clients()
    store = TimestreamTimeSeriesStore("fraud", "tx", write_client=write, query_client=query)
    with pytest.raises(StoreError, match="cannot key history"):
        store.history_query("amount; DROP", ["x"], 0, 1, 1)


def test_history_parses_every_page() -> None:
    write, query = clients()
    store = TimestreamTimeSeriesStore("fraud", "tx", write_client=write, query_client=query)
    sql = store.history_query("ip", ["9.9.9.9"], 0, 10_000, 99)
    with Stubber(query) as stub:
        stub.add_response("query", {"QueryId": "q", "Rows": [row("e2", "a", 2000, 5, ip="9.9.9.9")],
                                    "ColumnInfo": COLUMNS, "NextToken": "page-2"}, {"QueryString": sql})
        stub.add_response("query", {"QueryId": "q", "Rows": [row("e1", "b", 1000, 3, ip="9.9.9.9",
                                                                 attributes='{"channel": "web"}')],
                                    "ColumnInfo": COLUMNS}, {"QueryString": sql, "NextToken": "page-2"})
        got = store.history("ip", ["9.9.9.9"], 0, 10_000, 99)
        stub.assert_no_pending_responses()
    assert [(s.seq, s.event.event_id, s.ts_ms) for s in got] == [(3, "e1", 1000), (5, "e2", 2000)]
    first = got[0].event
    assert (str(first.amount), first.ip, first.lat, first.lon, first.attributes) == (
        "12.30", "9.9.9.9", 48.1, None, {"channel": "web"})


def test_existing_unjudged_events_are_pending_again_and_judged_ones_are_not() -> None:
    write, query = clients()
    store = TimestreamTimeSeriesStore("fraud", "tx", write_client=write, query_client=query, clock=lambda: 2.0)
    batch = [Transaction(event_id=i, ts=1000, account_id="a", amount=1) for i in ("old-judged", "old", "new")]
    with Stubber(query) as qstub, Stubber(write) as wstub:
        qstub.add_response("query", {"QueryId": "q", "ColumnInfo": COLUMNS, "Rows": [
            row("old-judged", "a", 1000, 10, judged="0"), row("old-judged", "a", 1000, 10, judged="1"),
            row("old", "a", 1000, 11, judged="0")]})
        wstub.add_response("write_records", {"RecordsIngested": {"Total": 1}})
        result = store.write(batch)
    assert result.new_ids == {"new"}
    assert [(p.event.event_id, p.seq) for p in result.pending] == [("old", 11), ("new", 2_000_000)]


def test_rejected_records_are_reported_with_their_reason() -> None:
    write, query = clients()
    store = TimestreamTimeSeriesStore("fraud", "tx", write_client=write, query_client=query)
    batch = [Transaction(event_id=f"e{i}", ts=1000, account_id="a", amount=1) for i in range(3)]
    with Stubber(query) as qstub, Stubber(write) as wstub:
        qstub.add_response("query", {"QueryId": "q", "ColumnInfo": COLUMNS, "Rows": []})
        wstub.add_client_error("write_records", "RejectedRecordsException", "some records were rejected",
                               400, modeled_fields={"RejectedRecords": [
                                   {"RecordIndex": 1, "Reason": "The record timestamp is outside the time range "
                                                                "[2026-11-28T00:00:00Z, 2026-11-28T06:00:00Z) of "
                                                                "the memory store."}]})
        result = store.write(batch)
    assert result.new_ids == {"e0", "e2"}
    assert [p.event.event_id for p in result.pending] == ["e0", "e2"]
    assert list(result.rejected) == ["e1"] and result.rejected["e1"].startswith("The record timestamp is outside")
    assert [(r.event_id, r.reason[:21]) for r in store.rejected] == [("e1", "The record timestamp ")]


def test_throttling_is_retried_then_reported_as_transient() -> None:
    write, query = clients()
    sleeps: list[float] = []
    store = TimestreamTimeSeriesStore("fraud", "tx", write_client=write, query_client=query, max_attempts=3,
                                      sleep=sleeps.append)
    batch = [Transaction(event_id="e", ts=1000, account_id="a", amount=1)]
    with Stubber(query) as qstub, Stubber(write) as wstub:
        qstub.add_response("query", {"QueryId": "q", "ColumnInfo": COLUMNS, "Rows": []})
        wstub.add_client_error("write_records", "ThrottlingException", "slow down", 429)
        wstub.add_response("write_records", {"RecordsIngested": {"Total": 1}})
        assert store.write(batch).new_ids == {"e"}
        qstub.add_response("query", {"QueryId": "q", "ColumnInfo": COLUMNS, "Rows": []})
        for _ in range(3):
            wstub.add_client_error("write_records", "ThrottlingException", "slow down", 429)
        with pytest.raises(TransientStoreError, match="throttled after 3 attempts"):
            store.write([Transaction(event_id="f", ts=1000, account_id="a", amount=1)])
    assert len(sleeps) == 1 + 2


@pytest.mark.parametrize(("rule", "key", "window_ms"), [
    ("{id: r, kind: velocity, key: account_id, window: 1m, threshold: 1}", "account_id", 60_000),
    ("{id: r, kind: fan_out, key: ip, distinct: account_id, window: 10m, threshold: 1}", "ip", 600_000),
    ("{id: r, kind: sum_over, key: card_id, window: 5m, threshold: 1}", "card_id", 300_000),
    ("{id: r, kind: amount_spike, key: account_id, window: 7d, factor: 3}", "account_id", 7 * 86_400_000),
    ("{id: r, kind: first_seen, key: account_id, field: device_id, window: 30d}", "account_id", 30 * 86_400_000),
    ("{id: r, kind: geo_velocity, key: device_id, window: 6h, threshold: 900}", "device_id", 6 * 3_600_000),
])
def test_history_query_per_windowed_kind(rule: str, key: str, window_ms: int) -> None:
    from chalicelib.rules import load_rules_text

    write, query = clients()
    store = TimestreamTimeSeriesStore("fraud", "tx", write_client=write, query_client=query)
    ruleset = load_rules_text(f"version: 1\nrules:\n  - {rule}\n")
    ts = 100 * 86_400_000
    event = Transaction(event_id="e", ts=ts, account_id="a", amount=1, ip="i", card_id="c", device_id="d")
    (request,) = history_requests(ruleset, [StoredEvent(3, event, ts)])
    text = store.history_query(request.key_field, request.keys, request.start_ms, request.end_ms, request.max_seq)
    assert request.key_field == key
    assert f"AND {key} IN ('{event.get(key)}') AND time > from_milliseconds({ts - window_ms}) " \
           f"AND time <= from_milliseconds({ts}) AND arrival <= 3 ORDER BY arrival" in text


def test_rules_without_windows_need_no_history_query() -> None:
    from chalicelib.rules import load_rules_text

    ruleset = load_rules_text("version: 1\nlists: {l: {values: [x]}}\nrules:\n"
                              "  - {id: l, kind: list_match, field: ip, list: l}\n"
                              "  - {id: s, kind: shared_identifier, threshold: 3}\n")
    event = Transaction(event_id="e", ts=0, account_id="a", amount=1, ip="x")
    assert history_requests(ruleset, [StoredEvent(1, event, 0)]) == []


def test_observed_since_reads_the_first_arrival_with_constant_query_text() -> None:
    """The observation start (DESIGN.md, Rule semantics): the event time of the lowest arrival;
    the query holds only the table's names and constants, never a record value."""
    write, query = clients()
    store = TimestreamTimeSeriesStore("fraud", "tx", write_client=write, query_client=query)
    sql = store.observed_since_query()
    assert sql == ('SELECT to_milliseconds(time) AS ts_ms FROM "fraud"."tx" '
                   "WHERE measure_name = 'tx' ORDER BY arrival ASC LIMIT 1")
    ts_column = [{"Name": "ts_ms", "Type": {"ScalarType": "BIGINT"}}]
    with Stubber(query) as stub:
        stub.add_response("query", {"QueryId": "q", "Rows": [], "ColumnInfo": ts_column}, {"QueryString": sql})
        stub.add_response("query", {"QueryId": "q", "Rows": [{"Data": [{"ScalarValue": "1700000000123"}]}],
                                    "ColumnInfo": ts_column}, {"QueryString": sql})
        assert store.observed_since() is None  # an empty table has observed nothing
        assert store.observed_since() == 1_700_000_000_123
        stub.assert_no_pending_responses()
