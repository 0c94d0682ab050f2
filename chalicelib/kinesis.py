"""Build Lambda-shaped Kinesis events from local record files (what `replay` and `demo` feed the
handler), so local runs go through exactly the code path a deployed function does."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

LineFormat = Literal["auto", "native", "seed", "kinesis"]
LINE_FORMATS: tuple[LineFormat, ...] = ("auto", "native", "seed", "kinesis")
SHARD_ID = "shardId-000000000000"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/fraud-transactions"


@dataclass(frozen=True, slots=True)
class StreamRecord:
    sequence_number: str
    partition_key: str
    data: bytes


def records_from_lines(lines: Iterable[str], line_format: LineFormat = "auto") -> Iterator[StreamRecord]:
    """One stream record per non-blank line.

    `kinesis` lines are `{"sequenceNumber", "partitionKey", "data"}` with `data` the record text;
    other lines are the record text itself and get the line number as sequence number, so
    replaying the same file gives the same event ids.
    """
    for number, line in enumerate(lines, 1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        envelope = _kinesis_envelope(text) if line_format in ("auto", "kinesis") else None
        if envelope is not None:
            yield envelope
        else:
            yield StreamRecord(f"{number:021d}", "replay", text.encode("utf-8"))


def _kinesis_envelope(text: str) -> StreamRecord | None:
    try:
        item = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not (isinstance(item, dict) and "data" in item and "sequenceNumber" in item):
        return None
    data = item["data"]
    payload = data.encode("utf-8") if isinstance(data, str) else json.dumps(data).encode("utf-8")
    return StreamRecord(str(item["sequenceNumber"]), str(item.get("partitionKey", "replay")), payload)


def kinesis_event(records: Sequence[StreamRecord], *, shard_id: str = SHARD_ID,
                  arrival_s: float = 0.0) -> dict[str, Any]:
    """A Lambda Kinesis event (`{"Records": [...]}`) for one shard's batch."""
    return {"Records": [
        {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": r.partition_key,
                "sequenceNumber": r.sequence_number,
                "data": base64.b64encode(r.data).decode("ascii"),
                "approximateArrivalTimestamp": arrival_s,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard_id}:{r.sequence_number}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/fraud-rules",
            "awsRegion": "us-east-1",
            "eventSourceARN": STREAM_ARN,
        }
        for r in records
    ]}


def batched(items: Iterable[StreamRecord], size: int) -> Iterator[list[StreamRecord]]:
    batch: list[StreamRecord] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
