"""A real Kinesis path for local runs: a producer that publishes with `put_records`, and a poller
that reads a Kinesis-API endpoint shard by shard the way Lambda's event source mapping does and
invokes the same handler.

Producer: batches within the API limits (500 records, 5 MiB per call, 1 MiB per record); a
partially failed call is retried for its failed records only (throttling, internal failures),
with jittered backoff. Partition key: the account id - an account's events stay in one shard, in
order, so account-keyed rules see them exactly in stream order whatever the shard scheduling.

Poller: per shard, an iterator from the checkpoint (AFTER_SEQUENCE_NUMBER) or TRIM_HORIZON;
GetRecords up to `batch_size`; the Lambda-shaped event goes to the handler; on
`batchItemFailures` the shard is re-read AT the failed record (the records before it are done);
the checkpoint is written only after the handler succeeded. A crash between handler and
checkpoint redelivers the batch: at-least-once, which the pipeline turns into exactly-once effects.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.lambda_response import redelivery_point
from chalicelib.retry import Backoff
from chalicelib.stores.exceptions import StoreError, TransientStoreError

log = logging.getLogger(__name__)

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
RETRYABLE_RECORD_ERRORS = frozenset({"ProvisionedThroughputExceededException", "InternalFailure"})


@dataclass(frozen=True)
class Outgoing:
    partition_key: str
    data: bytes


@dataclass
class ProduceReport:
    records: int = 0
    calls: int = 0
    retried_records: int = 0
    failed: list[tuple[Outgoing, str]] = field(default_factory=list)


def outgoing_from_lines(lines: Iterable[bytes | str], partition_field: str = "account_id") -> Iterator[Outgoing]:
    """One record per non-blank line, partitioned by a field of the record (seed records: 'account').

    Pass a file opened in binary mode: lines end at LF only (a CRLF's CR is dropped), so U+2028
    or a bare CR inside a record keeps it whole, and the bytes go out as they are - a line that
    is not UTF-8 or not JSON is still sent, and the pipeline dead-letters it with the reason.
    """
    from fraudtools.record_files import split_lines

    for _number, data in split_lines(lines):
        try:
            payload = json.loads(data)
            key = payload.get(partition_field) or payload.get("account") or "unknown"
        except (ValueError, AttributeError, RecursionError):  # not UTF-8 / not JSON / not an object
            key = "unparseable"
        yield Outgoing(str(key)[:256] or "unknown", data)


def api_batches(records: Iterable[Outgoing]) -> Iterator[list[Outgoing]]:
    """Group records into PutRecords calls within the record-count and byte limits."""
    batch: list[Outgoing] = []
    size = 0
    for record in records:
        record_bytes = len(record.data) + len(record.partition_key.encode())
        if record_bytes > MAX_RECORD_BYTES:
            raise StoreError(f"record of {record_bytes} bytes exceeds Kinesis' 1 MiB limit "
                             f"(key {record.partition_key})")
        if batch and (len(batch) == MAX_RECORDS_PER_CALL or size + record_bytes > MAX_BYTES_PER_CALL):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record_bytes
    if batch:
        yield batch


class KinesisProducer:
    def __init__(self, client: Any, stream_name: str, *, max_attempts: int = 8, base_delay_s: float = 0.1,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self.client = client
        self.stream_name = stream_name
        self.backoff = Backoff(max_attempts, base_delay_s, max_delay_s=5.0)
        self.sleep = sleep
        self.rng = rng or random.Random()

    def put(self, records: Iterable[Outgoing], on_sent: Callable[[int], None] = lambda n: None) -> ProduceReport:
        report = ProduceReport()
        for batch in api_batches(records):
            pending = batch
            for attempt in range(self.backoff.attempts):
                response = self.client.put_records(
                    StreamName=self.stream_name,
                    Records=[{"Data": r.data, "PartitionKey": r.partition_key} for r in pending])
                report.calls += 1
                results = response["Records"]
                retry = [(r, res.get("ErrorCode", "")) for r, res in zip(pending, results, strict=True)
                         if res.get("ErrorCode") in RETRYABLE_RECORD_ERRORS]
                report.failed.extend((r, f"{res['ErrorCode']}: {res.get('ErrorMessage', '')}")
                                     for r, res in zip(pending, results, strict=True)
                                     if res.get("ErrorCode") and res["ErrorCode"] not in RETRYABLE_RECORD_ERRORS)
                if not retry:
                    break
                if self.backoff.is_last(attempt):
                    report.failed.extend((r, f"{code} after {self.backoff.attempts} attempts") for r, code in retry)
                    break
                report.retried_records += len(retry)
                pending = [r for r, _ in retry]
                self.sleep(self.backoff.delay(attempt, self.rng))
            report.records += len(batch)
            on_sent(len(batch))
        return report


# --------------------------------------------------------------------------- the poller


class CheckpointFile:
    """Per-shard checkpoints (the last sequence number fully processed), in a JSON file written
    atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, str]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def save(self, shard_id: str, sequence_number: str) -> None:
        state = self.load()
        state[shard_id] = sequence_number
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(temporary, self.path)


@dataclass
class PollReport:
    batches: int = 0
    records: int = 0
    redeliveries: int = 0
    per_shard: dict[str, int] = field(default_factory=dict)


Handler = Callable[[dict[str, Any]], Mapping[str, Any]]


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    retries: int = 0
    processed: int = 0


class KinesisPoller:
    def __init__(self, client: Any, stream_name: str, handler: Handler, checkpoints: CheckpointFile, *,
                 batch_size: int = 100, max_retries: int = 10, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        self.client = client
        self.stream_name = stream_name
        self.handler = handler
        self.checkpoints = checkpoints
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.backoff = Backoff(max_retries + 1, base_delay_s=0.05, max_delay_s=2.0)
        self.sleep = sleep
        self.rng = rng or random.Random()
        self._arn: str | None = None

    def shards(self) -> list[str]:
        shards: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"NextToken": token} if token else {"StreamName": self.stream_name}
            page = self.client.list_shards(**kwargs)
            shards.extend(s["ShardId"] for s in page["Shards"])
            token = page.get("NextToken")
            if not token:
                return sorted(shards)

    def drain(self, on_batch: Callable[[int], None] = lambda n: None) -> PollReport:
        """Process every shard up to its current end. Shards take turns, one batch each, as
        Lambda's concurrent per-shard pollers would interleave them."""
        report = PollReport()
        shards = [_Shard(shard_id, self._iterator(shard_id)) for shard_id in self.shards()]
        while any(shard.iterator for shard in shards):
            for shard in shards:
                if shard.iterator:
                    self._step(shard, report, on_batch)
        report.per_shard = {shard.shard_id: shard.processed for shard in shards}
        return report

    def _iterator(self, shard_id: str, *, at: str | None = None) -> str:
        checkpoint = self.checkpoints.load().get(shard_id)
        if at is not None:
            kwargs = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": at}
        elif checkpoint is not None:
            kwargs = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": checkpoint}
        else:
            kwargs = {"ShardIteratorType": "TRIM_HORIZON"}
        return str(self.client.get_shard_iterator(StreamName=self.stream_name, ShardId=shard_id,
                                                  **kwargs)["ShardIterator"])

    def _step(self, shard: _Shard, report: PollReport, on_batch: Callable[[int], None]) -> None:
        """One GetRecords + handler call on one shard; sets `shard.iterator` to None at its end."""
        assert shard.iterator is not None
        page = self.client.get_records(ShardIterator=shard.iterator, Limit=self.batch_size)
        records = page["Records"]
        if not records:
            shard.iterator = None
            return
        result = self.handler(self.lambda_event(shard.shard_id, records))
        failed_at = redelivery_point(result)
        if failed_at is not None:
            shard.retries += 1
            if shard.retries > self.max_retries:
                raise TransientStoreError(f"shard {shard.shard_id}: batch still failing after {self.max_retries} "
                                          f"retries: {result.get('error')}")
            done = [r for r in records if int(r["SequenceNumber"]) < int(failed_at)]
            if done:
                self.checkpoints.save(shard.shard_id, done[-1]["SequenceNumber"])
                shard.processed += len(done)
            report.redeliveries += 1
            self.sleep(self.backoff.delay(shard.retries, self.rng))
            shard.iterator = self._iterator(shard.shard_id, at=failed_at)
            return
        shard.retries = 0
        self.checkpoints.save(shard.shard_id, records[-1]["SequenceNumber"])
        shard.processed += len(records)
        report.batches += 1
        report.records += len(records)
        on_batch(len(records))
        shard.iterator = page.get("NextShardIterator")

    def lambda_event(self, shard_id: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        if self._arn is None:
            summary = self.client.describe_stream_summary(StreamName=self.stream_name)
            self._arn = summary["StreamDescriptionSummary"]["StreamARN"]
        region = self.client.meta.region_name
        return {"Records": [{
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": r["PartitionKey"],
                "sequenceNumber": r["SequenceNumber"],
                "data": base64.b64encode(r["Data"]).decode("ascii"),
                "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard_id}:{r['SequenceNumber']}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/fraud-rules-local-poller",
            "awsRegion": region,
            "eventSourceARN": self._arn,
        } for r in records]}
