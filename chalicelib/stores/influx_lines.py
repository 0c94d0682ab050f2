"""InfluxDB line protocol and InfluxQL text for the store: how an event becomes points, how a
value is escaped (percent-encoded tags, escaped string fields: no value from a record can break a
line or a query), and how a query row becomes a stored event again."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from chalicelib.events import StoredEvent, Transaction, attribute_name, from_epoch_ms
from chalicelib.stores.exceptions import StoreError

EPOCH_NS = 1_735_689_600_000_000_000  # 2025-01-01T00:00:00Z: arrival seq 0
MAX_POINTS_PER_WRITE = 5000
MAX_BODY_BYTES = 4 * 1024 * 1024
INDEXED_FIELDS = ("account_id", "merchant_id", "ip", "device_id", "email", "phone", "card_id")
TRUTH = "event_id"  # measurement tx_by_event_id, tagged by id_bucket(event_id)
ID_BUCKETS = 4096
TEXT_FIELDS = ("account_id", "amount", "currency", "merchant_id", "ip", "device_id", "email", "phone", "card_id")


def escape_name(name: str) -> str:
    """A measurement name, tag key or field key: commas, equals signs and spaces escaped."""
    return name.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def tag_value(value: str) -> str:
    """A tag value that needs no escaping: percent-encoded (injective, deterministic), because a
    trailing backslash or a newline cannot be escaped in a line-protocol tag."""
    return quote(value, safe="@:+/")


def field_string(value: str) -> str:
    """A string field value: double quotes and backslashes escaped, in double quotes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def id_bucket(event_id: str) -> str:
    """The record-of-truth series of an event id: one of ID_BUCKETS, so ids are never tags."""
    return format(zlib.crc32(event_id.encode()) % ID_BUCKETS, "03x")


def key_expression(key_field: str) -> tuple[str, str | None]:
    """(measurement to read, attribute name or None) for a key field; unknown fields refused."""
    if key_field in INDEXED_FIELDS:
        return f"tx_by_{key_field}", None
    if key_field == "currency":
        return "tx_by_account_id", None
    name = attribute_name(key_field)
    if name:
        return "tx_by_account_id", name
    raise StoreError(f"cannot key history by {key_field!r}: use an identifier field or attributes.NAME "
                     "(letters, digits, underscore)")


def _event_fields(event: Transaction) -> str:
    parts = [f"event_id={field_string(event.event_id)}", f"ts_ms={event.ts_ms}i"]
    for name in TEXT_FIELDS:
        value = event.get(name)
        if value is not None:
            parts.append(f"{name}={field_string(str(value))}")
    for name in ("lat", "lon"):
        value = event.get(name)
        if value is not None:
            parts.append(f"{name}={float(value)!r}")
    if event.attributes:
        parts.append(f"attributes={field_string(json.dumps(event.attributes, separators=(',', ':')))}")
    return ",".join(parts)


def _point(field: str, key: str, fields: str, seq: int) -> str:
    return f"{escape_name('tx_by_' + field)},key={tag_value(key)} {fields} {EPOCH_NS + seq}"


@dataclass
class _Row:
    stored: StoredEvent
    judged: bool
    refused: str | None


def _ident(name: str) -> str:
    """An InfluxQL identifier in double quotes (our own names only; escaped all the same)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _any_of(column: str, values: Sequence[str], prefix: str, params: dict[str, str]) -> str:
    """`(column = $p0 OR column = $p1 ...)` with the values as bind parameters (InfluxQL has no IN)."""
    terms = []
    for i, value in enumerate(values):
        params[f"{prefix}{i}"] = value
        terms.append(f"{column} = ${prefix}{i}")
    return "(" + " OR ".join(terms) + ")"


def _chunks(groups: list[tuple[str, list[str]]]) -> Iterator[list[tuple[str, list[str]]]]:
    chunk: list[tuple[str, list[str]]] = []
    points = size = 0
    for group in groups:
        group_size = sum(len(line) + 1 for line in group[1])
        if chunk and (points + len(group[1]) > MAX_POINTS_PER_WRITE or size + group_size > MAX_BODY_BYTES):
            yield chunk
            chunk, points, size = [], 0, 0
        chunk.append(group)
        points += len(group[1])
        size += group_size
    if chunk:
        yield chunk


def _parse_row(row: Mapping[str, Any]) -> _Row:
    ts_ms = int(row["ts_ms"])
    attributes = row.get("attributes")
    lat, lon = row.get("lat"), row.get("lon")
    # Rows were validated on the way in; model_construct skips validating them again.
    event = Transaction.model_construct(
        event_id=str(row["event_id"]), ts=from_epoch_ms(ts_ms), account_id=str(row["account_id"]),
        amount=Decimal(str(row["amount"])), currency=row.get("currency"), merchant_id=row.get("merchant_id"),
        ip=row.get("ip"), device_id=row.get("device_id"), email=row.get("email"), phone=row.get("phone"),
        card_id=row.get("card_id"), lat=float(lat) if lat is not None else None,
        lon=float(lon) if lon is not None else None, attributes=json.loads(attributes) if attributes else {})
    return _Row(StoredEvent(int(row["time"]) - EPOCH_NS, event, ts_ms), row.get("judged") == 1, row.get("refused"))
