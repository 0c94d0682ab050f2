"""Record files as `replay` and `kinesis produce` read them: bytes, split on LF only, one record
(or one refused line) per line, sequence numbers = physical line numbers, `--format` enforced."""

from __future__ import annotations

import io
import json

import pytest

from fraudtools.kinesis_stream import outgoing_from_lines
from fraudtools.record_files import LineFormat, RefusedLine, StreamRecord, records_from_lines

NATIVE = b'{"event_id": "e1", "account_id": "a", "amount": 5, "ts": 0}'
SEED = (b'{"object_type": "transaction", "account": "1234-5678-20", "transaction_amount": "5", '
        b'"time": "Nov 01, 2026, 10:00:00.000"}')
ENVELOPE = json.dumps({"sequenceNumber": "77", "partitionKey": "k", "data": NATIVE.decode()}).encode()


def read(data: bytes, line_format: LineFormat = "auto") -> list[StreamRecord | RefusedLine]:
    return list(records_from_lines(io.BytesIO(data), line_format))


def test_a_line_of_invalid_utf8_is_one_record_and_the_others_keep_their_line_numbers() -> None:
    items = read(NATIVE + b"\n\xff\xfe\xfd\n" + NATIVE.replace(b"e1", b"e3") + b"\n")
    assert [type(i) for i in items] == [StreamRecord] * 3
    assert [i.sequence_number for i in items] == [f"{n:021d}" for n in (1, 2, 3)]
    assert items[1].data == b"\xff\xfe\xfd"  # passed on as it is: the pipeline dead-letters it


def test_a_bare_cr_between_tokens_does_not_split_a_record_nor_shift_line_numbers() -> None:
    with_cr = NATIVE.replace(b", ", b",\r")
    items = read(with_cr + b"\n" + NATIVE + b"\r\n\n" + NATIVE + b"\n")
    assert [i.sequence_number for i in items] == [f"{n:021d}" for n in (1, 2, 4)]
    assert items[0].data == with_cr and items[1].data == NATIVE  # a CRLF's CR is dropped
    assert all(isinstance(i, StreamRecord) for i in items)


def test_u2028_inside_a_string_stays_one_record() -> None:
    record = json.dumps({"account_id": "a", "merchant_id": "x\u2028y\u2029z", "amount": 1, "ts": 0},
                        ensure_ascii=False).encode()
    items = read(record + b"\n" + NATIVE + b"\n")
    assert len(items) == 2 and items[0].data == record


def test_an_envelope_whose_data_holds_a_lone_surrogate_is_refused_with_a_reason() -> None:
    items = read(b'{"sequenceNumber": "5", "data": "\\ud800"}\n' + ENVELOPE + b"\n")
    refused, record = items
    assert isinstance(refused, RefusedLine) and "lone surrogate" in refused.reason
    assert refused.sequence_number == "5" and refused.data.startswith(b'{"sequenceNumber"')
    assert isinstance(record, StreamRecord) and record.sequence_number == "77" and record.data == NATIVE
    poison = refused.to_poison()
    assert poison.record.record_id == "shardId-000000000000:5" and poison.reason == refused.reason


def test_an_envelope_sequence_number_must_be_a_whole_number() -> None:
    (item,) = read(b'{"sequenceNumber": "12a", "data": "{}"}\n')
    assert isinstance(item, RefusedLine) and "not a whole number" in item.reason
    assert item.sequence_number == f"{1:021d}"


@pytest.mark.parametrize(("line_format", "line", "refused_because"), [
    ("seed", NATIVE, "not in the seed format: it looks like a native record"),
    ("native", SEED, "not in the native format: it looks like a seed record"),
    ("native", ENVELOPE, "is a Kinesis envelope"),
    ("seed", ENVELOPE, "is a Kinesis envelope"),
    ("kinesis", NATIVE, "not a Kinesis envelope {sequenceNumber, partitionKey, data}: it looks like a native"),
    ("kinesis", b"not json", "not a Kinesis envelope: not JSON"),
    ("kinesis", b"\xff", "not a Kinesis envelope: not UTF-8"),
])
def test_format_means_what_it_says(line_format: LineFormat, line: bytes, refused_because: str) -> None:
    (item,) = read(line + b"\n", line_format)
    assert isinstance(item, RefusedLine), item
    assert refused_because in item.reason and item.data == line and item.sequence_number == f"{1:021d}"
    assert "use --format" in item.reason or "not JSON" in item.reason or "not UTF-8" in item.reason


@pytest.mark.parametrize(("line_format", "line"), [
    ("native", NATIVE), ("seed", SEED), ("kinesis", ENVELOPE), ("auto", NATIVE), ("auto", SEED), ("auto", ENVELOPE),
    ("native", b"not json"), ("seed", b"\xff"),  # for the pipeline to dead-letter, with its reason
])
def test_format_accepts_its_own_lines(line_format: LineFormat, line: bytes) -> None:
    (item,) = read(line + b"\n", line_format)
    assert isinstance(item, StreamRecord)


def test_produce_splits_on_lf_only_and_sends_bytes_as_they_are() -> None:
    u2028 = json.dumps({"account_id": "a", "merchant_id": "x\u2028y", "amount": 1, "ts": 0},
                       ensure_ascii=False).encode()
    with_cr = NATIVE.replace(b", ", b",\r")
    out = list(outgoing_from_lines(io.BytesIO(u2028 + b"\n" + with_cr + b"\r\n\xff\xfe\n\n")))
    assert [o.data for o in out] == [u2028, with_cr, b"\xff\xfe"]
    assert [o.partition_key for o in out] == ["a", "a", "unparseable"]
