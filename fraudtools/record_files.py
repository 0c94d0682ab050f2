"""Build Lambda-shaped Kinesis events from local record files (what `replay` and `demo` feed the
handler), so local runs go through exactly the code path a deployed function does."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal, Protocol, TypeVar

from chalicelib.events import MAX_RECORD_BYTES, PoisonRecord, RawRecord, detect_format

LineFormat = Literal["auto", "native", "seed", "kinesis"]
LINE_FORMATS: tuple[LineFormat, ...] = ("auto", "native", "seed", "kinesis")
SHARD_ID = "shardId-000000000000"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/fraud-transactions"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StreamRecord:
    sequence_number: str
    partition_key: str
    data: bytes


@dataclass(frozen=True, slots=True)
class RefusedLine:
    """A line of a records file that cannot become a stream record (e.g. the wrong format for
    `--format`): the caller dead-letters it with the reason and the line's bytes."""

    sequence_number: str  # the physical line number, as for a record line
    data: bytes
    reason: str

    def to_poison(self, shard_id: str = SHARD_ID) -> PoisonRecord:
        raw = RawRecord(f"{shard_id}:{self.sequence_number}", self.sequence_number, "replay", self.data)
        return PoisonRecord(raw, self.reason)


FileItem = StreamRecord | RefusedLine

#: The longest line a records file may hold: a record at the record limit inside a Kinesis envelope
#: (its text JSON-escaped). A longer line is refused as it is read, never held whole.
MAX_LINE_BYTES = 2 * MAX_RECORD_BYTES
_SKIP_CHUNK = 1 << 20


class ReadsLines(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class LongLine:
    """A line over the line limit, read past in chunks: its first bytes and its length."""

    head: bytes
    length: int


def bounded_lines(handle: ReadsLines, max_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes | LongLine]:
    """The lines of a file opened in binary mode (split at LF), each at most `max_bytes` long
    without its line break; a longer one is a `LongLine` and at most `max_bytes` of it is held."""
    while line := handle.readline(max_bytes + 1):
        if line.endswith(b"\n") or len(line) <= max_bytes:
            yield line
            continue
        head, length = line[:max_bytes], len(line)
        while not line.endswith(b"\n") and (line := handle.readline(_SKIP_CHUNK)):
            length += len(line)
        yield LongLine(head, length - line.endswith(b"\n"))

_DIGITS = re.compile(r"[0-9]{1,128}")
_FORMAT_HINT = {"native": "'account_id'", "seed": "'account' and 'transaction_amount'"}


def split_lines(lines: Iterable[bytes | str]) -> Iterator[tuple[int, bytes]]:
    """(physical line number, line bytes) of each non-blank line, without its line break.

    Iterate a file opened in binary mode: lines end at LF only, and the CR of a CRLF ending is
    dropped, so a bare CR or U+2028 inside a record never splits it and line numbers stay the
    physical ones. `str` lines (already split by the caller) are encoded back to UTF-8, keeping
    lone surrogates as the undecodable bytes they stand for.
    """
    for number, line in enumerate(lines, 1):
        data = _without_line_break(line)
        if data.strip():
            yield number, data


def _without_line_break(line: bytes | str) -> bytes:
    data = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
    if data.endswith(b"\n"):
        data = data[:-1]
    if data.endswith(b"\r"):
        data = data[:-1]
    return data


def records_from_lines(lines: Iterable[bytes | str | LongLine] | IO[bytes],
                       line_format: LineFormat = "auto") -> Iterator[FileItem]:
    """One stream record per non-blank line, or a `RefusedLine` saying why not.

    `kinesis` lines are `{"sequenceNumber", "partitionKey", "data"}` with `data` the record text;
    other lines are the record bytes themselves and get the line number as sequence number, so
    replaying the same file gives the same event ids. `native` and `seed` refuse a line that is
    plainly another format; `auto` takes each line as what it looks like. A record line that is
    not UTF-8 or not JSON is passed on as it is: the pipeline dead-letters it with the reason.
    A file opened in binary mode is read through `bounded_lines`: a line over `MAX_LINE_BYTES`
    is refused as it is read, without holding it whole.
    """
    source = bounded_lines(lines) if isinstance(lines, io.BufferedIOBase | io.RawIOBase) else lines
    for number, line in enumerate(source, 1):
        if isinstance(line, LongLine):
            yield RefusedLine(f"{number:021d}", line.head, f"line {number} is {line.length:,} bytes long, over the "
                              f"limit of {MAX_LINE_BYTES:,} for a line (a record is at most {MAX_RECORD_BYTES:,} "
                              "bytes): skipped as it was read, never held whole")
            continue
        data = _without_line_break(line)
        if data.strip():
            yield _line_item(number, data, line_format)


def _line_item(number: int, data: bytes, line_format: LineFormat) -> FileItem:
    sequence_number = f"{number:021d}"
    as_record = StreamRecord(sequence_number, "replay", data)
    try:
        item = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        if line_format == "kinesis":
            return RefusedLine(sequence_number, data, f"line {number} is not a Kinesis envelope: "
                               f"{'not UTF-8' if isinstance(exc, UnicodeDecodeError) else 'not JSON'} ({exc})")
        return as_record
    is_envelope = isinstance(item, dict) and "data" in item and "sequenceNumber" in item
    if is_envelope:
        if line_format in ("auto", "kinesis"):
            return _unwrap_envelope(number, data, item)
        return RefusedLine(sequence_number, data, f"line {number} is a Kinesis envelope {{sequenceNumber, "
                           f"partitionKey, data}}, not a {line_format} record: use --format kinesis or auto")
    looks_like = detect_format(item) if isinstance(item, dict) else None
    if line_format == "kinesis":
        what = f"a {looks_like} record" if looks_like else f"JSON {type(item).__name__}"
        return RefusedLine(sequence_number, data, f"line {number} is not a Kinesis envelope {{sequenceNumber, "
                           f"partitionKey, data}}: it looks like {what}"
                           + (f"; use --format {looks_like} or auto" if looks_like else ""))
    if line_format in ("native", "seed") and looks_like is not None and looks_like != line_format:
        return RefusedLine(sequence_number, data, f"line {number} is not in the {line_format} format: it looks "
                           f"like a {looks_like} record (has {_FORMAT_HINT[looks_like]}); use --format "
                           f"{looks_like} or auto")
    return as_record


def _unwrap_envelope(number: int, line: bytes, item: dict[str, Any]) -> FileItem:
    sequence_number = str(item["sequenceNumber"])
    if not _DIGITS.fullmatch(sequence_number):
        return RefusedLine(f"{number:021d}", line, f"line {number}: Kinesis envelope sequenceNumber "
                           f"{sequence_number[:40]!r} is not a whole number")
    data = item["data"]
    if not isinstance(data, str):
        data = json.dumps(data)
    try:
        payload = data.encode("utf-8")
    except UnicodeEncodeError as exc:
        return RefusedLine(sequence_number, line, f"line {number}: Kinesis envelope data holds a lone "
                           f"surrogate at character {exc.start} ({data[exc.start]!r}), which no UTF-8 "
                           "record can carry")
    return StreamRecord(sequence_number, str(item.get("partitionKey", "replay")), payload)


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


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
