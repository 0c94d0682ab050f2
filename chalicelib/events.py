"""Transactions and the decoders that turn raw Kinesis record bytes into them.

Two payload formats are understood, detected per record:

* **native** - a JSON object with the `Transaction` field names (`ts` as ISO-8601 or epoch ms);
* **seed** - the string-typed records of the original AWS reference producer
  (`account`, `accountemail`, `phone`, `merchant`, `transaction_amount`, `time`).

Anything that cannot become a valid `Transaction` is a `PoisonRecord`: the caller sends it to the
dead-letter sink with its reason and raw bytes; it never stops the rest of the batch.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_RECORD_BYTES = 32 * 1024
MAX_TEXT = 256
MAX_ATTRIBUTES = 32
MAX_ABS_AMOUNT = Decimal("1e12")
MIN_TS_MS = 0  # 1970-01-01
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01

SEED_TIME_FORMAT = "%b %d, %Y, %H:%M:%S.%f"

Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
Scalar = str | int | float | bool | None


_ATTRIBUTE_PATH = re.compile(r"^attributes\.([A-Za-z0-9_]{1,64})$")


def attribute_name(field: str) -> str | None:
    """NAME for a field written `attributes.NAME` (letters, digits, underscore), else None. The
    one definition rules, stores and queries share, so a name that validates is safe in SQL."""
    match = _ATTRIBUTE_PATH.match(field)
    return match.group(1) if match else None


#: The fields a windowed rule may group by, besides `attributes.NAME`: the text identifiers every
#: time-series store reads history by. Numbers and times (`amount`, `lat`, `lon`, `ts`) and the
#: event's own id make no key: no store indexes them, and a key of one event is no window.
KEY_FIELDS: tuple[str, ...] = ("account_id", "merchant_id", "ip", "device_id", "email", "phone", "card_id",
                               "currency")


def is_key_field(field: str) -> bool:
    return field in KEY_FIELDS or attribute_name(field) is not None


class Transaction(BaseModel):
    """One card or account transaction. Immutable; `ts` is UTC with millisecond precision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: Text
    ts: datetime
    account_id: Text
    amount: Decimal = Field(allow_inf_nan=False)
    currency: Text | None = None
    merchant_id: Text | None = None
    ip: Text | None = None
    device_id: Text | None = None
    email: Text | None = None
    phone: Text | None = None
    card_id: Text | None = None
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    attributes: dict[Text, Scalar] = Field(default_factory=dict, max_length=MAX_ATTRIBUTES)

    @field_validator("ts", mode="before")
    @classmethod
    def _parse_ts(cls, value: Any) -> datetime:
        return parse_timestamp(value)

    @field_validator("amount", mode="before")
    @classmethod
    def _exact_amount(cls, value: Any) -> Any:
        # A JSON float like 0.1 must become Decimal("0.1"), not the binary expansion of 0.1.
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("amount must be a finite number")
            return Decimal(repr(value))
        if isinstance(value, bool):
            raise ValueError("amount must be a number, not a boolean")
        return value

    @field_validator("amount")
    @classmethod
    def _sane_amount(cls, value: Decimal) -> Decimal:
        if abs(value) > MAX_ABS_AMOUNT:
            raise ValueError(f"amount {bounded(str(value), 40)} is beyond +/-{MAX_ABS_AMOUNT:,.0f}")
        return value

    @field_validator("attributes")
    @classmethod
    def _attribute_text(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        for name, item in value.items():
            if isinstance(item, str) and len(item) > MAX_TEXT:
                raise ValueError(f"attribute {name!r} is longer than {MAX_TEXT} characters")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"attribute {name!r} is not a finite number")
        return value

    @property
    def ts_ms(self) -> int:
        return to_epoch_ms(self.ts)

    def get(self, field: str) -> Any:
        """The value of an event field, or `attributes.NAME`; None when absent."""
        if field.startswith("attributes."):
            return self.attributes.get(field[len("attributes.") :])
        return getattr(self, field, None)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


def to_epoch_ms(ts: datetime) -> int:
    return (ts - EPOCH) // ONE_MS


def from_epoch_ms(ms: int) -> datetime:
    return EPOCH + ms * ONE_MS


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 text (naive means UTC) or epoch milliseconds -> aware UTC datetime, ms precision."""
    if isinstance(value, bool):
        raise ValueError("ts must be ISO-8601 text or epoch milliseconds, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("ts is not a finite number")
        ms = int(value)
    elif isinstance(value, datetime):
        ms = to_epoch_ms(value if value.tzinfo else value.replace(tzinfo=UTC))
    elif isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            if len(text) > 20:  # far outside the range, and int() refuses 4300+ digits anyway
                raise ValueError(f"ts {bounded(text, 40)!r} is outside 1970..2100")
            ms = int(text)
        else:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"ts {value!r} is neither ISO-8601 nor epoch milliseconds") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            ms = to_epoch_ms(parsed)
    else:
        raise ValueError(f"ts must be ISO-8601 text or epoch milliseconds, got {type(value).__name__}")
    if not MIN_TS_MS <= ms < MAX_TS_MS:
        raise ValueError(f"ts {value!r} is outside 1970..2100")
    return from_epoch_ms(ms)


# --------------------------------------------------------------------------- raw records


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One Kinesis record as the handler receives it: identity plus the undecoded payload."""

    record_id: str  # the Kinesis eventID (shard + sequence number): stable across redelivery
    sequence_number: str
    partition_key: str
    data: bytes


MAX_REASON_CHARS = 400
MAX_DEAD_LETTER_BYTES = 64 * 1024


def bounded(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """`text` cut to `limit` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


@dataclass(frozen=True, slots=True)
class PoisonRecord:
    """A record that could not become a `Transaction`, with the reason and the raw bytes.

    The reason is cut to MAX_REASON_CHARS (a value quoted in it can be as long as the record).
    """

    record: RawRecord
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", bounded(self.reason))

    def to_dead_letter(self) -> dict[str, Any]:
        """The dead letter: the reason and the raw bytes as they came, in base64 and, when they
        are UTF-8, as text. Bytes beyond MAX_DEAD_LETTER_BYTES are cut (`data_truncated`); the
        full length and SHA-256 still identify the record."""
        data = self.record.data
        kept = data[:MAX_DEAD_LETTER_BYTES]
        try:
            text: str | None = kept.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        letter: dict[str, Any] = {
            "record_id": self.record.record_id,
            "sequence_number": self.record.sequence_number,
            "partition_key": self.record.partition_key,
            "reason": self.reason,
            "data_base64": base64.b64encode(kept).decode("ascii"),
            "data_text": text,
        }
        if len(data) > len(kept):
            letter.update(data_truncated=True, data_bytes=len(data),
                          data_sha256=hashlib.sha256(data).hexdigest())
        return letter


def records_from_kinesis_event(event: Mapping[str, Any]) -> list[RawRecord | PoisonRecord]:
    """The records of a Lambda Kinesis event (`{"Records": [...]}`) in stream order."""
    out: list[RawRecord | PoisonRecord] = []
    for index, item in enumerate(event.get("Records") or ()):
        kinesis = item.get("kinesis") if isinstance(item, Mapping) else None
        if not isinstance(kinesis, Mapping):
            raw = RawRecord(f"record-{index}", "", "", b"")
            out.append(PoisonRecord(raw, f"event record {index} has no 'kinesis' object"))
            continue
        sequence_number = str(kinesis.get("sequenceNumber", ""))
        record_id = str(item.get("eventID") or f"record-{sequence_number or index}")
        raw = RawRecord(record_id, sequence_number, str(kinesis.get("partitionKey", "")), b"")
        try:
            data = base64.b64decode(kinesis.get("data", ""), validate=True)
        except (ValueError, TypeError) as exc:
            out.append(PoisonRecord(raw, f"kinesis data is not base64: {exc}"))
            continue
        out.append(RawRecord(raw.record_id, raw.sequence_number, raw.partition_key, data))
    return out


# --------------------------------------------------------------------------- decoders

Format = Literal["native", "seed"]


def detect_format(payload: Mapping[str, Any]) -> Format | None:
    if "account_id" in payload:
        return "native"
    if "account" in payload and "transaction_amount" in payload:
        return "seed"
    return None


def seed_to_native(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Map a reference-producer record onto the native field names (values stay as sent)."""
    object_type = payload.get("object_type", "transaction")
    if object_type != "transaction":
        raise ValueError(f"seed record has object_type {object_type!r}, only 'transaction' is known")
    time_text = payload.get("time")
    if not isinstance(time_text, str):
        raise ValueError("seed record has no 'time' text")
    try:
        ts = datetime.strptime(time_text, SEED_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(
            f"seed time {time_text!r} does not match 'Mon DD, YYYY, HH:MM:SS.mmm'"
        ) from None
    amount = payload.get("transaction_amount")
    if isinstance(amount, str):
        try:
            amount = Decimal(amount.strip())
        except InvalidOperation:
            raise ValueError(f"transaction_amount {amount!r} is not a number") from None
    native: dict[str, Any] = {
        "account_id": payload.get("account"),
        "amount": amount,
        "ts": ts,
        "email": payload.get("accountemail") or None,
        "phone": payload.get("phone") or None,
        "merchant_id": payload.get("merchant") or None,
    }
    if "event_id" in payload:
        native["event_id"] = payload["event_id"]
    known = {"object_type", "account", "accountemail", "phone", "merchant", "transaction_amount",
             "time", "event_id"}
    extra = {k: v for k, v in payload.items() if k not in known}
    if extra:
        native["attributes"] = extra
    return native


def decode_record(record: RawRecord, *, max_bytes: int = MAX_RECORD_BYTES) -> Transaction | PoisonRecord:
    """Decode one raw record into a Transaction, or say why it is poison."""
    if len(record.data) > max_bytes:
        return PoisonRecord(record, f"record is {len(record.data)} bytes, above the {max_bytes}-byte limit")
    try:
        record.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return PoisonRecord(record, f"record is not UTF-8: {exc}")
    try:
        payload = orjson.loads(record.data)
    except orjson.JSONDecodeError as exc:
        return PoisonRecord(record, f"record is not JSON: {exc}")
    if not isinstance(payload, dict):
        return PoisonRecord(record, f"record is JSON {type(payload).__name__}, expected an object")
    fmt = detect_format(payload)
    if fmt is None:
        return PoisonRecord(
            record, "unknown record format: expected 'account_id' (native) or 'account' and "
            "'transaction_amount' (reference producer)"
        )
    try:
        fields = dict(payload) if fmt == "native" else seed_to_native(payload)
    except ValueError as exc:
        return PoisonRecord(record, f"{fmt} record: {exc}")
    fields.setdefault("event_id", record.record_id)
    try:
        return Transaction.model_validate(fields)
    except ValidationError as exc:
        return PoisonRecord(record, f"{fmt} record invalid: {_summarise(exc)}")


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "record"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A transaction as the time-series store holds it: `seq` is its arrival order (1, 2, ...)."""

    seq: int
    event: Transaction
    ts_ms: int


# --------------------------------------------------------------------------- the compact row

#: A compact window row: what `TimeSeriesStore.window_rows` returns and what rule kinds judge on
#: the hot path (`Rule.judge_rows`): `(ts_ms, seq, event_id, value of each requested field...)`,
#: each value what `Transaction.get` returns for its field (`attributes` is the whole mapping).
WindowRow = tuple[Any, ...]

ROW_TS, ROW_SEQ, ROW_EVENT_ID = 0, 1, 2  # the fixed head of every row
ROW_VALUES = 3  # where the requested fields' values start

#: The field name that stands for the whole `attributes` mapping in a compact row.
ALL_ATTRIBUTES = "attributes"


def row_positions(fields: Iterable[str]) -> dict[str, int]:
    """Field name -> position in rows read with these `fields`, in order."""
    return {name: ROW_VALUES + i for i, name in enumerate(fields)}


def transaction_of_row(row: WindowRow, positions: Mapping[str, int]) -> Transaction:
    """The event a row stands for, with the fields it holds (others are their defaults). Built
    without validation: the row came from a stored, validated event."""
    values: dict[str, Any] = {"event_id": row[ROW_EVENT_ID], "ts": from_epoch_ms(row[ROW_TS])}
    attributes: dict[str, Any] = {}
    for name, position in positions.items():
        value = row[position]
        attribute = attribute_name(name)
        if attribute:
            if value is not None:
                attributes.setdefault(attribute, value)
        elif name == ALL_ATTRIBUTES:
            attributes = {**(value or {}), **attributes}
        else:
            values[name] = value
    values["attributes"] = attributes
    return Transaction.model_construct(**values)
