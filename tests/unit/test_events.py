from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from chalicelib.events import (
    MAX_DEAD_LETTER_BYTES,
    MAX_REASON_CHARS,
    PoisonRecord,
    RawRecord,
    Transaction,
    decode_record,
    records_from_kinesis_event,
)

SEED = {"object_type": "transaction", "account": "1234-5678-22", "accountemail": "shared@example-anycompany.com",
        "phone": "10001000", "merchant": "1234-5678-1003", "transaction_amount": "20000",
        "time": "Oct 22, 2024, 13:06:45.123"}


def raw(payload: object, record_id: str = "shardId-000000000000:42") -> RawRecord:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return RawRecord(record_id, "42", "pk", data)


def test_seed_record_maps_every_field() -> None:
    tx = decode_record(raw(SEED))
    assert isinstance(tx, Transaction)
    assert tx.account_id == "1234-5678-22"
    assert tx.email == "shared@example-anycompany.com"
    assert tx.phone == "10001000"
    assert tx.merchant_id == "1234-5678-1003"
    assert tx.amount == Decimal("20000")
    assert tx.ts == datetime(2024, 10, 22, 13, 6, 45, 123000, tzinfo=UTC)
    assert tx.event_id == "shardId-000000000000:42"  # from the Kinesis eventID: stable on redelivery


def test_native_record_with_iso_and_epoch_ms_timestamps() -> None:
    iso = decode_record(raw({"event_id": "x1", "account_id": "a", "amount": 12.5, "ts": "2026-11-01T10:00:00.123Z"}))
    epoch = decode_record(raw({"event_id": "x1", "account_id": "a", "amount": 12.5, "ts": 1793527200123}))
    assert isinstance(iso, Transaction) and isinstance(epoch, Transaction)
    assert iso.ts == epoch.ts == datetime(2026, 11, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert iso.event_id == "x1"


def test_float_amount_is_exact_decimal() -> None:
    tx = decode_record(raw({"account_id": "a", "amount": 0.1, "ts": 0}))
    assert isinstance(tx, Transaction)
    assert tx.amount == Decimal("0.1")


def test_timestamp_is_truncated_to_milliseconds_and_naive_means_utc() -> None:
    tx = decode_record(raw({"account_id": "a", "amount": 1, "ts": "2026-11-01T10:00:00.123999"}))
    assert isinstance(tx, Transaction)
    assert tx.ts == datetime(2026, 11, 1, 10, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize(("data", "reason"), [
    (b"\xff\xfe not utf-8", "not UTF-8"),
    (b"{not json", "not JSON"),
    (b"[1, 2]", "expected an object"),
    (json.dumps({"foo": 1}).encode(), "unknown record format"),
    (json.dumps({"account_id": "a", "amount": "x", "ts": 0}).encode(), "amount"),
    (json.dumps({"account_id": "a", "amount": 1, "ts": "yesterday"}).encode(), "ts"),
    (json.dumps({"account_id": "", "amount": 1, "ts": 0}).encode(), "account_id"),
    (json.dumps({"account_id": "a", "amount": 1, "ts": 99999999999999999}).encode(), "1970..2100"),
    (b'{"account_id": "a", "amount": NaN, "ts": 0}', "not JSON"),
    (json.dumps({"account_id": "a", "amount": "NaN", "ts": 0}).encode(), "amount"),
    (json.dumps({"account_id": "a", "amount": "Infinity", "ts": 0}).encode(), "amount"),
    (json.dumps({"account_id": "a", "amount": 1e15, "ts": 0}).encode(), "beyond"),
    (json.dumps({"account_id": "a", "amount": 1, "ts": 0, "lat": 91}).encode(), "lat"),
    (json.dumps({"account_id": "a" * 300, "amount": 1, "ts": 0}).encode(), "account_id"),
    (json.dumps({"account_id": "a", "amount": 1, "ts": 0, "colour": "red"}).encode(), "colour"),
    (json.dumps({**SEED, "transaction_amount": "12abc"}).encode(), "not a number"),
    (json.dumps({**SEED, "time": "2024-10-22 13:06"}).encode(), "does not match"),
    (json.dumps({**SEED, "object_type": "account"}).encode(), "object_type"),
    (json.dumps({**SEED, "account": None}).encode(), "account_id"),
    (b"{" + b'"account_id": "a", "amount": 1, "ts": 0, "pad": "' + b"x" * 40_000 + b'"}', "byte limit"),
])
def test_poison_records_say_why(data: bytes, reason: str) -> None:
    result = decode_record(raw(data))
    assert isinstance(result, PoisonRecord)
    assert reason in result.reason
    letter = result.to_dead_letter()
    assert base64.b64decode(letter["data_base64"]) == data
    assert letter["record_id"] == "shardId-000000000000:42"


def test_kinesis_event_records_keep_order_and_flag_bad_base64() -> None:
    event = {"Records": [
        {"eventID": "s:1",
         "kinesis": {"sequenceNumber": "1", "partitionKey": "p", "data": base64.b64encode(b"{}").decode()}},
        {"eventID": "s:2", "kinesis": {"sequenceNumber": "2", "partitionKey": "p", "data": "!!!not base64"}},
    ]}
    first, second = records_from_kinesis_event(event)
    assert isinstance(first, RawRecord) and first.data == b"{}" and first.record_id == "s:1"
    assert isinstance(second, PoisonRecord) and "base64" in second.reason


def test_attributes_path_lookup() -> None:
    tx = Transaction(event_id="e", ts=0, account_id="a", amount=1, attributes={"channel": "web"})
    assert tx.get("attributes.channel") == "web"
    assert tx.get("attributes.missing") is None
    assert tx.get("ip") is None


def test_dead_letter_reasons_are_bounded_and_the_raw_bytes_kept() -> None:
    data = b'{"account_id": "a", "ts": 0, "amount": "' + b"9" * 5001 + b'"}'
    result = decode_record(raw(data))
    assert isinstance(result, PoisonRecord)
    assert "is beyond" in result.reason and len(result.reason) <= MAX_REASON_CHARS
    long_reason = PoisonRecord(raw(b"{}"), "x" * 10_000).reason
    assert len(long_reason) == MAX_REASON_CHARS and long_reason.endswith("\u2026")
    letter = result.to_dead_letter()
    assert base64.b64decode(letter["data_base64"]) == data and letter["data_text"] == data.decode()
    assert "data_truncated" not in letter


def test_dead_letter_keeps_at_most_64_kib_of_raw_bytes_with_length_and_digest() -> None:
    import hashlib

    data = b"x" * (MAX_DEAD_LETTER_BYTES + 10)
    letter = decode_record(raw(data)).to_dead_letter()  # type: ignore[union-attr]
    assert base64.b64decode(letter["data_base64"]) == data[:MAX_DEAD_LETTER_BYTES]
    assert letter["data_truncated"] is True and letter["data_bytes"] == len(data)
    assert letter["data_sha256"] == hashlib.sha256(data).hexdigest()


def test_kinesis_event_data_that_is_not_text_is_poison_not_a_crash() -> None:
    bodies = [b"\xff\xfe", b"\xed\xa0\x80", '{"account_id": "\ud800"}'.encode("utf-8", "surrogatepass"),
              b'{"account_id": "\\ud800", "amount": 1, "ts": 0}', b""]
    event = {"Records": [
        {"eventID": f"s:{i}", "kinesis": {"sequenceNumber": str(i), "partitionKey": "p",
                                          "data": base64.b64encode(body).decode()}}
        for i, body in enumerate(bodies)
    ] + [{"eventID": "s:9", "kinesis": {"sequenceNumber": "9", "data": 12}}, "not a record", {"kinesis": None}]}
    results = [r if isinstance(r, PoisonRecord) else decode_record(r) for r in records_from_kinesis_event(event)]
    assert len(results) == len(bodies) + 3 and all(isinstance(r, PoisonRecord) for r in results)
    reasons = [r.reason for r in results if isinstance(r, PoisonRecord)]
    assert [("not UTF-8" in r) for r in reasons[:3]] == [True, True, True]
    assert "surrogate" in reasons[3] and "not JSON" in reasons[4] and "base64" in reasons[5]
    assert all("no 'kinesis' object" in r for r in reasons[6:])
