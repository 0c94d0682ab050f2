"""The Kinesis handler through chalice.test.Client, on the embedded stores, in both formats."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as chalice_app

NATIVE = [
    {"event_id": f"n{i}", "account_id": "acct-1", "amount": 500, "ip": f"198.51.100.{i % 2}",
     "ts": f"2026-11-01T10:00:{i:02d}Z"} for i in range(7)
]
SEED = [
    {"object_type": "transaction", "account": f"1234-5678-2{i}", "accountemail": "shared@example-anycompany.com",
     "phone": "10001000", "merchant": "1234-5678-1003", "transaction_amount": "30000",
     "time": f"Nov 01, 2026, 10:00:{i:02d}.000"} for i in range(2)
] + [
    {"object_type": "transaction", "account": "1234-5678-20", "accountemail": "shared@example-anycompany.com",
     "phone": "10001000", "merchant": "1234-5678-1003", "transaction_amount": "30000",
     "time": "Nov 01, 2026, 10:00:05.000"}
]
POISON = [b"\xff\xfe", b"{oops", json.dumps({"account_id": "x", "amount": "NaN", "ts": 0}).encode()]


def kinesis_event(handler_client: Client, bodies: list[bytes], first_sequence: int = 1) -> dict[str, Any]:
    event = handler_client.events.generate_kinesis_event(message_bodies=bodies)
    # The generator gives every record sequence number 12345; a real shard never does.
    for offset, record in enumerate(event["Records"]):
        sequence = str(first_sequence + offset)
        record["kinesis"]["sequenceNumber"] = sequence
        record["eventID"] = f"shardId-000000000000:{sequence}"
    return event


def invoke(handler_client: Client, bodies: list[bytes], first_sequence: int = 1) -> dict[str, Any]:
    event = kinesis_event(handler_client, bodies, first_sequence)
    return handler_client.lambda_.invoke("on_transactions", event).payload


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_mixed_batch_of_both_formats_and_poison(handler_client: Client, tmp_path: Path) -> None:
    bodies = [json.dumps(e).encode() for e in NATIVE[:3]] + [POISON[0]] + \
             [json.dumps(e).encode() for e in SEED] + POISON[1:] + [json.dumps(e).encode() for e in NATIVE[3:]]
    report = invoke(handler_client, bodies)

    assert report["batchItemFailures"] == []
    assert (report["records"], report["accepted"], report["poison"], report["duplicates"]) == (13, 10, 3, 0)
    # seed accounts 1234-5678-20 pays 30,000 twice in 5 minutes: reference detector 1
    assert report["hits"]["high-value-5m"] == 1
    # acct-1 pays 500 seven times in 15 minutes: reference detector 2 fires on the 6th and 7th
    assert report["hits"]["repeat-500-15m"] == 2
    hits = jsonl(tmp_path / "hits.jsonl")
    assert {h["event_id"] for h in hits if h["rule_id"] == "repeat-500-15m"} == {"n5", "n6"}
    seed_hit = next(h for h in hits if h["rule_id"] == "high-value-5m")
    assert seed_hit["event_id"] == "shardId-000000000000:7"  # seed records get the Kinesis eventID
    assert seed_hit["edge"] == {"label": "HIGH_VALUE_SUM", "from": {"field": "account_id", "value": "1234-5678-20"},
                                "to": {"field": "merchant_id", "value": "1234-5678-1003"}}
    letters = jsonl(tmp_path / "dead-letters.jsonl")
    assert [base64.b64decode(d["data_base64"]) for d in letters] == POISON
    assert all(d["reason"] for d in letters)


def test_redelivered_batch_changes_nothing(handler_client: Client, tmp_path: Path) -> None:
    bodies = [json.dumps(e).encode() for e in NATIVE] + [POISON[1]]
    first = invoke(handler_client, bodies)
    hits_before = (tmp_path / "hits.jsonl").read_text()
    letters_before = (tmp_path / "dead-letters.jsonl").read_text()
    again = invoke(handler_client, bodies)
    assert first["accepted"] == 7 and again["accepted"] == 0 and again["duplicates"] == 7
    assert again["hits"] == {}
    assert (tmp_path / "hits.jsonl").read_text() == hits_before
    assert (tmp_path / "dead-letters.jsonl").read_text() == letters_before


def test_transient_store_failure_reports_batch_item_failures(handler_client: Client, tmp_path: Path) -> None:
    import sqlite3

    invoke(handler_client, [json.dumps(NATIVE[0]).encode()])  # the container's store now exists
    locker = sqlite3.connect(tmp_path / "timeseries.sqlite", timeout=0)
    locker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    store = chalice_app.get_pipeline().timeseries
    store._db.execute("PRAGMA busy_timeout = 50")  # fail fast instead of waiting 10 s
    try:
        report = invoke(handler_client, [json.dumps(e).encode() for e in NATIVE[1:4]], first_sequence=2)
    finally:
        locker.rollback()
        locker.close()
    assert report["batchItemFailures"] == [{"itemIdentifier": "2"}]
    assert "busy" in report["error"]
    retry = invoke(handler_client, [json.dumps(e).encode() for e in NATIVE[1:4]], first_sequence=2)
    assert retry["batchItemFailures"] == [] and retry["accepted"] == 3


@pytest.mark.parametrize("backend", ["sqlite", "gremlite"])
def test_locked_graph_reports_batch_item_failures_and_redelivery_completes(handler_client: Client, tmp_path: Path,
                                                                          backend: str) -> None:
    import sqlite3

    pipeline = chalice_app.get_pipeline()  # the warm container's (the stage's GRAPH_BACKEND: sqlite)
    if backend == "gremlite":
        from chalicelib.stores import GremlinGraphStore, GremliteConnection

        assert pipeline.graph is not None
        pipeline.graph.close()
        pipeline.graph = GremlinGraphStore(GremliteConnection(tmp_path / "graph.sqlite"))
    invoke(handler_client, [json.dumps(NATIVE[0]).encode()])
    graph_store = chalice_app.get_pipeline().graph
    assert graph_store is not None and graph_store is pipeline.graph
    if backend == "gremlite":
        graph_store.connection.remote.con.execute("PRAGMA busy_timeout = 50")  # type: ignore[attr-defined]
        locker = sqlite3.connect(tmp_path / "graph.sqlite", timeout=0)
    else:
        graph_store._db.execute("PRAGMA busy_timeout = 50")  # type: ignore[attr-defined]
        locker = sqlite3.connect(tmp_path / "entity-graph.sqlite", timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        report = invoke(handler_client, [json.dumps(e).encode() for e in NATIVE[1:]], first_sequence=2)
    finally:
        locker.rollback()
        locker.close()
    assert report["batchItemFailures"] == [{"itemIdentifier": "2"}] and "busy" in report["error"]
    assert jsonl(tmp_path / "hits.jsonl") == []  # nothing was reported as done
    retry = invoke(handler_client, [json.dumps(e).encode() for e in NATIVE[1:]], first_sequence=2)
    assert retry["batchItemFailures"] == []
    assert retry["accepted"] == 0 and retry["rejudged"] == 6  # stored by the failed delivery, judged now
    assert retry["hits"]["repeat-500-15m"] == 2
    edges = len(graph_store.hit_edges_of(["acct-1"]))
    assert edges == len(jsonl(tmp_path / "hits.jsonl"))
