"""Producer -> Kinesis (moto server on loopback) -> poller -> the Lambda handler -> stores:
every record reaches the stores exactly once, despite handler failures and redelivery."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

import app as chalice_app
from chalicelib.stores import SQLiteTimeSeriesStore
from fraudtools.kinesis_stream import (
    CheckpointFile,
    KinesisPoller,
    KinesisProducer,
    Outgoing,
    api_batches,
    outgoing_from_lines,
)
from fraudtools.simulate import iter_lines, simulate
from tests.conftest import PROJECT

pytestmark = pytest.mark.integration


@pytest.fixture
def kinesis(moto_endpoint: str) -> Any:
    return boto3.client("kinesis", endpoint_url=moto_endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def stream_name(kinesis: Any) -> str:
    name = f"fraud-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=3)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    return name


@pytest.fixture
def handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RULES_FILE", str(PROJECT / "rules.yaml"))
    chalice_app.reset_pipeline()
    yield lambda event: chalice_app.on_transactions(event, None)
    chalice_app.reset_pipeline()


def stored_ids(tmp_path: Path) -> list[str]:
    store = SQLiteTimeSeriesStore(tmp_path / "data" / "timeseries.sqlite")
    try:
        return [row[2] for row in store.dump()]
    finally:
        store.close()


def test_every_record_reaches_the_stores_exactly_once(kinesis: Any, stream_name: str, handler: Any,
                                                      tmp_path: Path) -> None:
    stream = simulate(seed=3, accounts=60, days=1)
    lines = [*iter_lines(stream), "not json", '{"account_id": "x", "amount": "NaN", "ts": 0}']
    report = KinesisProducer(kinesis, stream_name).put(outgoing_from_lines(lines))
    assert report.records == len(lines) and report.failed == [] and report.calls == -(-len(lines) // 500)

    calls = {"n": 0}

    def flaky(event: dict[str, Any]) -> dict[str, Any]:
        calls["n"] += 1
        result = handler(event)
        if calls["n"] % 4 == 0:  # every 4th delivery "fails" half-way after doing its work
            middle = event["Records"][len(event["Records"]) // 2]["kinesis"]["sequenceNumber"]
            return {**result, "batchItemFailures": [{"itemIdentifier": middle}]}
        return result

    checkpoints = CheckpointFile(tmp_path / "checkpoints.json")
    first = KinesisPoller(kinesis, stream_name, flaky, checkpoints, batch_size=50, sleep=lambda s: None).drain()
    assert first.redeliveries > 0 and len(first.per_shard) == 3
    assert sum(first.per_shard.values()) == len(lines)

    # A crash after the handler but before the checkpoint: the poller starts from an old checkpoint.
    state = checkpoints.load()
    rewound = {shard: str(int(seq) - 1) if int(seq) > 0 else seq for shard, seq in state.items()}
    checkpoints.path.write_text(json.dumps({k: v for k, v in list(rewound.items())[:1]}))
    second = KinesisPoller(kinesis, stream_name, handler, checkpoints, batch_size=50).drain()
    assert second.records > 0  # something really was delivered again

    ids = stored_ids(tmp_path)
    assert len(ids) == len(set(ids)) == len(stream.events)  # exactly once, poison excluded
    assert set(ids) == {e["event_id"] for e in stream.events}
    letters = (tmp_path / "data" / "dead-letters.jsonl").read_text().splitlines()
    assert len(letters) == 2  # the two poison records, once each despite redelivery
    hits = [json.loads(line) for line in (tmp_path / "data" / "hits.jsonl").read_text().splitlines()]
    assert len({h["hit_id"] for h in hits}) == len(hits) > 0


def test_a_resumed_poller_starts_after_its_checkpoint(kinesis: Any, stream_name: str, handler: Any,
                                                      tmp_path: Path) -> None:
    lines = [json.dumps({"event_id": f"e{i}", "account_id": f"a{i % 5}", "amount": 10, "ts": i * 1000})
             for i in range(30)]
    producer = KinesisProducer(kinesis, stream_name)
    producer.put(outgoing_from_lines(lines[:20]))
    checkpoints = CheckpointFile(tmp_path / "checkpoints.json")
    seen: list[str] = []

    def recording(event: dict[str, Any]) -> dict[str, Any]:
        seen.extend(r["eventID"] for r in event["Records"])
        return handler(event)

    assert KinesisPoller(kinesis, stream_name, recording, checkpoints).drain().records == 20
    producer.put(outgoing_from_lines(lines[20:]))
    assert KinesisPoller(kinesis, stream_name, recording, checkpoints).drain().records == 10
    assert len(seen) == len(set(seen)) == 30
    assert sorted(stored_ids(tmp_path)) == sorted(f"e{i}" for i in range(30))


def test_only_the_failed_records_are_retried() -> None:
    client = boto3.client("kinesis", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    records = [Outgoing(f"a{i}", f'{{"n": {i}}}'.encode()) for i in range(4)]
    with Stubber(client) as stub:
        stub.add_response("put_records", {"FailedRecordCount": 2, "Records": [
            {"SequenceNumber": "1", "ShardId": "s"},
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"},
            {"SequenceNumber": "2", "ShardId": "s"},
            {"ErrorCode": "InternalFailure", "ErrorMessage": "oops"}]},
            {"StreamName": "s", "Records": [{"Data": r.data, "PartitionKey": r.partition_key} for r in records]})
        stub.add_response("put_records", {"Records": [
            {"SequenceNumber": "3", "ShardId": "s"}, {"SequenceNumber": "4", "ShardId": "s"}]},
            {"StreamName": "s", "Records": [{"Data": r.data, "PartitionKey": r.partition_key}
                                            for r in (records[1], records[3])]})
        sleeps: list[float] = []
        report = KinesisProducer(client, "s", sleep=sleeps.append).put(records)
        stub.assert_no_pending_responses()
    assert (report.records, report.calls, report.retried_records, report.failed) == (4, 2, 2, [])
    assert len(sleeps) == 1


def test_batches_respect_the_api_limits() -> None:
    small = [Outgoing("k", b"x" * 10) for _ in range(1201)]
    assert [len(b) for b in api_batches(small)] == [500, 500, 201]
    big = [Outgoing("k", b"x" * (900 * 1024)) for _ in range(12)]
    sizes = [sum(len(r.data) + 1 for r in b) for b in api_batches(big)]
    assert all(size <= 5 * 1024 * 1024 for size in sizes) and sum(len(b) for b in api_batches(big)) == 12
