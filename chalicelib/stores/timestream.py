"""Amazon Timestream for LiveAnalytics as the TimeSeriesStore.

Note: Timestream for LiveAnalytics has been closed to new AWS customers since June 2025;
accounts that already used it keep it. New accounts need another backend (a Timestream for
InfluxDB backend is planned behind the same `TimeSeriesStore` interface).

Layout: one multi-measure record per event, measure name `tx`, dimensions `account_id` and
`event_id` (so two events of an account in the same millisecond are two records), measures for
every other field plus `arrival` (the arrival order this store assigns: write time in ms x 1000
+ position in the batch) and `judged`. Idempotency: a batch first asks which of its event ids are
stored (one query), writes only the others with Version 1, and `mark_judged` rewrites the judged
events with Version 2 (Timestream's upsert), so a redelivered event is neither written nor judged
twice and one that was written but not judged is judged again, in its original arrival order.

Per batch: one existence query, WriteRecords in calls of at most 100 records with common
attributes, one history query per key field (paginated with NextToken), and the judged rewrite.
Values from records only ever appear in SQL as escaped string literals.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from chalicelib.events import StoredEvent, Transaction, attribute_name, from_epoch_ms
from chalicelib.retry import Backoff
from chalicelib.stores.base import TimeSeriesStore, WriteResult
from chalicelib.stores.exceptions import StoreError, TransientStoreError

log = logging.getLogger(__name__)

MAX_RECORDS_PER_WRITE = 100
MEASURE = "tx"
TEXT_MEASURES = ("amount", "currency", "merchant_id", "ip", "device_id", "email", "phone", "card_id", "attributes")
DOUBLE_MEASURES = ("lat", "lon")
DIMENSIONS = ("account_id", "event_id")
KEY_COLUMNS = frozenset({"account_id", "merchant_id", "ip", "device_id", "email", "phone", "card_id", "currency"})
TRANSIENT_CODES = frozenset({"ThrottlingException", "InternalServerException", "ServiceUnavailable",
                             "ServiceUnavailableException", "RequestTimeout"})
#: how far around a batch's timestamps the existence query looks for earlier deliveries
DEDUP_MARGIN_MS = 7 * 24 * 3600 * 1000


def sql_string(value: str) -> str:
    """A SQL string literal: quotes doubled, control characters refused."""
    if any(ord(c) < 32 for c in value):
        raise StoreError("a key value with control characters cannot be queried")
    return "'" + value.replace("'", "''") + "'"


def key_expression(key_field: str) -> str:
    if key_field in KEY_COLUMNS:
        return key_field
    name = attribute_name(key_field)
    if name:
        return f"json_extract_scalar(attributes, '$.{name}')"
    raise StoreError(f"cannot key history by {key_field!r}: use an identifier field or attributes.NAME")


@dataclass(frozen=True)
class Rejected:
    event_id: str
    reason: str


class TimestreamTimeSeriesStore(TimeSeriesStore):
    #: arrival is the writer's clock (ms x 1000 + position): two writers' batches interleave and a
    #: slow writer can store an arrival below another's high-water mark, so the warm-container
    #: window cache stays off for this backend (every batch reads its windows, as it always did)
    exact_arrival: ClassVar[bool] = False

    def __init__(self, database: str, table: str, *, write_client: Any, query_client: Any,
                 max_attempts: int = 6, base_delay_s: float = 0.1, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        self.database = database
        self.table = table
        self.write_client = write_client
        self.query_client = query_client
        self.backoff = Backoff(max_attempts, base_delay_s, max_delay_s=5.0)
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self.rejected: list[Rejected] = []  # what Timestream refused, with its reason (last write)
        self._written: dict[str, StoredEvent] = {}  # this batch's records, for the judged rewrite

    @property
    def _table_ref(self) -> str:
        return f'"{self.database}"."{self.table}"'

    def prepare(self, key_fields: Iterable[str]) -> None:
        for key_field in key_fields:
            key_expression(key_field)  # refuse unknown keys early; Timestream needs no indexes

    # ----------------------------------------------------------------------- writes

    def write(self, events: Sequence[Transaction]) -> WriteResult:
        if not events:
            return WriteResult(frozenset(), ())
        existing = self._existing(events)
        base = int(self.clock() * 1000) * 1000
        fresh: dict[str, StoredEvent] = {}
        for event in events:
            if event.event_id not in existing and event.event_id not in fresh:
                fresh[event.event_id] = StoredEvent(base + len(fresh), event, event.ts_ms)
        self.rejected = self._write_records([self._record(s, judged=False, version=1) for s in fresh.values()])
        refused = {r.event_id: r.reason for r in self.rejected}
        for rejected in self.rejected:
            log.error("timestream rejected event %s: %s", rejected.event_id, rejected.reason)
        fresh = {event_id: s for event_id, s in fresh.items() if event_id not in refused}
        pending = [s for s, judged in existing.values() if not judged] + list(fresh.values())
        pending.sort(key=lambda s: s.seq)
        self._written = {s.event.event_id: s for s in pending}
        return WriteResult(frozenset(fresh), tuple(pending), refused)

    def mark_judged(self, event_ids: Iterable[str]) -> None:
        records = [self._record(self._written[i], judged=True, version=2) for i in event_ids if i in self._written]
        rejected = self._write_records(records)
        if rejected:
            raise StoreError(f"timestream refused to mark {len(rejected)} events judged: {rejected[0].reason}")

    def _record(self, stored: StoredEvent, *, judged: bool, version: int) -> dict[str, Any]:
        event = stored.event
        measures = [{"Name": "arrival", "Value": str(stored.seq), "Type": "BIGINT"},
                    {"Name": "judged", "Value": "1" if judged else "0", "Type": "BIGINT"}]
        for name in TEXT_MEASURES:
            if name == "attributes":
                value = json.dumps(event.attributes) if event.attributes else None
            else:
                value = event.get(name)
            if value is not None:
                measures.append({"Name": name, "Value": str(value), "Type": "VARCHAR"})
        for name in DOUBLE_MEASURES:
            value = event.get(name)
            if value is not None:
                measures.append({"Name": name, "Value": repr(float(value)), "Type": "DOUBLE"})
        return {"Dimensions": [{"Name": d, "Value": str(event.get(d)), "DimensionValueType": "VARCHAR"}
                               for d in DIMENSIONS],
                "Time": str(stored.ts_ms), "MeasureValues": measures, "Version": version}

    def _write_records(self, records: list[dict[str, Any]]) -> list[Rejected]:
        rejected: list[Rejected] = []
        for start in range(0, len(records), MAX_RECORDS_PER_WRITE):
            chunk = records[start:start + MAX_RECORDS_PER_WRITE]
            rejected.extend(self._write_chunk(chunk))
        return rejected

    def _write_chunk(self, chunk: list[dict[str, Any]]) -> list[Rejected]:
        from botocore.exceptions import ClientError

        for attempt in range(self.backoff.attempts):
            try:
                self.write_client.write_records(
                    DatabaseName=self.database, TableName=self.table, Records=chunk,
                    CommonAttributes={"MeasureName": MEASURE, "MeasureValueType": "MULTI", "TimeUnit": "MILLISECONDS"})
                return []
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "RejectedRecordsException":
                    return self._rejections(chunk, exc.response.get("RejectedRecords", []))
                if code in TRANSIENT_CODES and not self.backoff.is_last(attempt):
                    self.sleep(self.backoff.delay(attempt, self.rng))
                    continue
                if code in TRANSIENT_CODES:
                    raise TransientStoreError(f"timestream write throttled after {self.backoff.attempts} attempts: "
                                              f"{exc}") from exc
                raise StoreError(f"timestream write failed: {exc}") from exc
        raise AssertionError("unreachable")

    @staticmethod
    def _rejections(chunk: list[dict[str, Any]], entries: list[dict[str, Any]]) -> list[Rejected]:
        out = []
        for entry in entries:
            record = chunk[entry["RecordIndex"]]
            event_id = next(d["Value"] for d in record["Dimensions"] if d["Name"] == "event_id")
            reason = entry.get("Reason", "rejected")
            if "ExistingVersion" in entry and "version" in reason.lower():
                continue  # an earlier delivery is already stored with that version: nothing to do
            out.append(Rejected(event_id, reason))
        return out

    # ----------------------------------------------------------------------- reads

    def history_query(self, key_field: str, keys: Iterable[str], start_ms: int, end_ms: int, max_seq: int,
                      min_seq: int = 0) -> str:
        """The SQL of one history read (public so its text can be checked)."""
        values = ", ".join(sql_string(k) for k in sorted(set(keys)))
        lower = f"AND arrival > {int(min_seq)} " if min_seq > 0 else ""
        return (f"SELECT {self._columns()} FROM {self._table_ref} "
                f"WHERE measure_name = '{MEASURE}' AND {key_expression(key_field)} IN ({values}) "
                f"AND time > from_milliseconds({int(start_ms)}) AND time <= from_milliseconds({int(end_ms)}) "
                f"{lower}AND arrival <= {int(max_seq)} ORDER BY arrival")

    def observed_since_query(self) -> str:
        """The SQL of `observed_since` (constants only: no record value reaches it)."""
        return (f"SELECT to_milliseconds(time) AS ts_ms FROM {self._table_ref} "
                f"WHERE measure_name = '{MEASURE}' ORDER BY arrival ASC LIMIT 1")

    def observed_since(self) -> int | None:
        for page_row in self._raw_rows(self.observed_since_query()):
            value = page_row.get("ts_ms")
            if value is not None:
                return int(value)
        return None

    def existence_query(self, events: Sequence[Transaction]) -> str:
        ids = ", ".join(sql_string(e.event_id) for e in sorted(events, key=lambda e: e.event_id))
        low = min(e.ts_ms for e in events) - DEDUP_MARGIN_MS
        high = max(e.ts_ms for e in events) + DEDUP_MARGIN_MS
        return (f"SELECT {self._columns()} FROM {self._table_ref} WHERE measure_name = '{MEASURE}' "
                f"AND event_id IN ({ids}) AND time BETWEEN from_milliseconds({low}) AND from_milliseconds({high})")

    def history(self, key_field: str, keys: Iterable[str], start_ms: int, end_ms: int,
                max_seq: int, *, min_seq: int = 0) -> list[StoredEvent]:
        keys = list(keys)
        if not keys:
            return []
        sql = self.history_query(key_field, keys, start_ms, end_ms, max_seq, min_seq)
        rows = [stored for stored, _ in self._query(sql)]
        return sorted(rows, key=lambda s: s.seq)

    def _existing(self, events: Sequence[Transaction]) -> dict[str, tuple[StoredEvent, bool]]:
        """Stored deliveries of these events: event id -> (stored event, judged)."""
        found: dict[str, tuple[StoredEvent, bool]] = {}
        for stored, judged in self._query(self.existence_query(events)):
            known = found.get(stored.event.event_id)
            found[stored.event.event_id] = (stored, judged or (known is not None and known[1]))
        return found

    @staticmethod
    def _columns() -> str:
        return ", ".join(["account_id", "event_id", "to_milliseconds(time) AS ts_ms", "arrival", "judged",
                          *TEXT_MEASURES[:-1], "attributes", *DOUBLE_MEASURES])

    def _query(self, sql: str) -> Iterator[tuple[StoredEvent, bool]]:
        for row in self._raw_rows(sql):
            yield _parse_row(row)

    def _raw_rows(self, sql: str) -> Iterator[dict[str, str | None]]:
        """Every row of a query as column name -> scalar text, through all its pages."""
        from botocore.exceptions import ClientError

        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"QueryString": sql}
            if token:
                kwargs["NextToken"] = token
            try:
                page = self.query_client.query(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in TRANSIENT_CODES:
                    raise TransientStoreError(f"timestream query throttled: {exc}") from exc
                raise StoreError(f"timestream query failed: {exc}") from exc
            names = [c["Name"] for c in page["ColumnInfo"]]
            for row in page["Rows"]:
                yield dict(zip(names, (_scalar(d) for d in row["Data"]), strict=True))
            token = page.get("NextToken")
            if not token:
                return


def _scalar(datum: dict[str, Any]) -> str | None:
    return None if datum.get("NullValue") else datum.get("ScalarValue")


def _parse_row(row: dict[str, str | None]) -> tuple[StoredEvent, bool]:
    text = row.get("attributes")
    lat, lon = row.get("lat"), row.get("lon")
    ts_ms = int(str(row["ts_ms"]))
    event = Transaction.model_construct(
        event_id=str(row["event_id"]), ts=from_epoch_ms(ts_ms), account_id=str(row["account_id"]),
        amount=Decimal(str(row["amount"])), currency=row.get("currency"), merchant_id=row.get("merchant_id"),
        ip=row.get("ip"), device_id=row.get("device_id"), email=row.get("email"), phone=row.get("phone"),
        card_id=row.get("card_id"), lat=float(lat) if lat else None, lon=float(lon) if lon else None,
        attributes=json.loads(text) if text else {})
    return StoredEvent(int(str(row["arrival"])), event, ts_ms), row.get("judged") == "1"
