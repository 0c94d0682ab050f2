"""InfluxDB (Amazon Timestream for InfluxDB) as the TimeSeriesStore, over the v1 HTTP API.

Only the two endpoints every engine keeps are used: `/write` (line protocol) and `/query`
(InfluxQL), served natively by InfluxDB 1.x, through a DBRP mapping by 2.x and as the v1
compatibility API by 3.x.

Layout (measurements in the configured database and retention policy):

* `tx_by_<field>` for each indexed identifier field (account_id, merchant_id, ip, device_id,
  email, phone, card_id): one point per event with that field set, tag `key` = the field's value
  (percent-encoded, so no value can break line protocol), fields = the whole event. A history read
  by an identifier field reads only the series of the batch's keys. Series cardinality is the
  number of distinct values per field - entities, never events; no event id is ever a tag.
* `tx_by_account_id` is also the record of truth: it alone carries `judged` (0/1, rewritten by
  `mark_judged`) and `refused` (the server's reason when part of an event was refused).
  Key fields that are not indexed (currency, `attributes.NAME`) are read from it by time and
  arrival range and filtered by the server (currency) or here (attributes).
* The point's timestamp is its arrival, not the event time: `seq` in ns after 2025-01-01 UTC.
  `seq` = the writer's microsecond clock (never going backwards) x 1000 + the writer's slot, so
  seqs are unique while slots are, and two events of one key in the same millisecond are two
  points. Event time is the integer field `ts_ms`. Retention therefore counts from arrival,
  replays of old data are never "beyond retention", and delta reads (`min_seq`) are time-range
  reads.
* `writer_slots`: a writer (a warm container) leases one of 1000 slots: it writes a lease point
  and holds the slot if its point is the earliest for that slot within `LEASE_S` (server time,
  so client clocks do not matter); it renews and re-checks before writing when its last check is
  older than `RECHECK_S`, and moves to another slot if someone else holds it.

Idempotency: a write first reads the batch's event ids from the batch accounts' record-of-truth
series (arrivals within `DEDUP_WINDOW_S`); stored events keep their seq and content (the first
delivery wins). New events' record-of-truth points are written first, then every index point of
the batch's unjudged events (rewriting an existing point with the same content is a no-op), so a
batch that dies half-way is completed by its redelivery with the same seqs.

Values from records reach the server only as line-protocol values escaped by the book, percent-
encoded tag values, or InfluxQL bind parameters (`params=`); query text holds only our names and
integers. Writes go in chunks of at most `MAX_POINTS_PER_WRITE` points / `MAX_BODY_BYTES`.
429 and 5xx are retried with full-jitter backoff and then raise TransientStoreError; a partial
write (some points refused) is bisected down to the refused events, which are reported in
`WriteResult.rejected` with the server's reason while the rest goes on.

`exact_arrival` is False: seqs come from the writers' clocks, so a write that started before a
reader's high-water mark can become visible after it. Delta readers read from
`high-water - arrival_margin_seq` and deduplicate by event id.

Parts: the HTTP API and the connection settings are in `influx_http.py`, line protocol, escaping
and InfluxQL text in `influx_lines.py`; this module is the store: writes, reads, idempotency,
the retry policy and the writer-slot lease.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlencode

from chalicelib.events import StoredEvent, Transaction
from chalicelib.retry import Backoff
from chalicelib.stores.base import TimeSeriesStore, WriteResult
from chalicelib.stores.exceptions import StoreError, TransientStoreError
from chalicelib.stores.influx_http import (
    TRANSIENT_STATUS,
    HttpClient,
    InfluxConnection,
    _error_text,
    _seconds,
    default_http,
)
from chalicelib.stores.influx_lines import (
    EPOCH_NS,
    INDEXED_FIELDS,
    TEXT_FIELDS,
    TRUTH,
    _any_of,
    _chunks,
    _event_fields,
    _ident,
    _parse_row,
    _point,
    _Row,
    field_string,
    id_bucket,
    key_expression,
    tag_value,
)

log = logging.getLogger(__name__)

SLOTS = 1000
LEASE_S = 600
RECHECK_S = 60
DEDUP_WINDOW_S = 7 * 24 * 3600
MAX_REMEMBERED = 50_000
LEASES = "writer_slots"
OBSERVED_PAGE = 100


# --------------------------------------------------------------------------- line protocol


# --------------------------------------------------------------------------- the store


class InfluxTimeSeriesStore(TimeSeriesStore):
    exact_arrival: ClassVar[bool] = False
    #: how far below a high-water mark a delta read must start to see every late-visible write
    arrival_margin_seq: ClassVar[int | None] = 120 * 1_000_000_000

    def __init__(self, connection: InfluxConnection, *, http: HttpClient | None = None, max_attempts: int = 6,
                 base_delay_s: float = 0.1, max_delay_s: float = 5.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        self.connection = connection
        self.http = http or default_http(connection)
        self.backoff = Backoff(max_attempts, base_delay_s, max_delay_s)
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self.owner = uuid.uuid4().hex
        self.slot: int | None = None
        self._slot_checked = 0.0
        self._last_us = 0
        self._unjudged: dict[str, StoredEvent] = {}  # pending events written here, for mark_judged
        self._base = connection.url.rstrip("/")
        self._headers = connection.auth_headers()

    # ----------------------------------------------------------------------- admin

    def create_database(self) -> None:
        """CREATE DATABASE (1.x; idempotent). 2.x needs a bucket + DBRP mapping, 3.x creates on write."""
        self._post("/query", {"q": f"CREATE DATABASE {_ident(self.connection.database)}"})

    def drop_database(self) -> None:
        self._post("/query", {"q": f"DROP DATABASE {_ident(self.connection.database)}"})

    def prepare(self, key_fields: Iterable[str]) -> None:
        for key_field in key_fields:
            key_expression(key_field)  # refuse unknown keys early; identifier fields are always indexed

    # ----------------------------------------------------------------------- writes

    def write(self, events: Sequence[Transaction]) -> WriteResult:
        if not events:
            return WriteResult(frozenset(), ())
        existing = self._existing(events)
        fresh: dict[str, Transaction] = {}
        for event in events:
            if event.event_id not in existing:
                fresh.setdefault(event.event_id, event)
        seqs = self._allocate(len(fresh)) if fresh else []
        new = [StoredEvent(seq, event, event.ts_ms) for seq, event in zip(seqs, fresh.values(), strict=True)]

        refused = self._write_events([(s.event.event_id, [self._truth_point(s, judged=False)]) for s in new])
        pending = [row.stored for row in existing.values() if not row.judged and row.refused is None]
        pending += [s for s in new if s.event.event_id not in refused]
        pending.sort(key=lambda s: s.seq)
        late = self._write_events([(s.event.event_id, self._index_points(s)) for s in pending])
        if late:
            self._mark_refused([s for s in pending if s.event.event_id in late], late)
            refused.update(late)
            pending = [s for s in pending if s.event.event_id not in late]
        for event_id, reason in refused.items():
            log.error("influxdb refused event %s: %s", event_id, reason)
        self._remember(pending)
        new_ids = frozenset(s.event.event_id for s in new if s.event.event_id not in refused)
        return WriteResult(new_ids, tuple(pending), refused)

    def mark_judged(self, event_ids: Iterable[str]) -> None:
        ids = list(dict.fromkeys(event_ids))
        unknown = [i for i in ids if i not in self._unjudged]
        if unknown:  # not pending in this container: find their record-of-truth points
            self._remember(row.stored for row in self._by_event_id(unknown).values())
        judged = [s for s in (self._unjudged.get(i) for i in ids) if s is not None]
        lines = [_point(TRUTH, id_bucket(s.event.event_id), "judged=1i", s.seq) for s in judged]
        refused = self._write_events([("", lines)]) if lines else {}
        if refused:
            raise StoreError(f"influxdb refused to mark events judged: {next(iter(refused.values()))}")
        for s in judged:
            self._unjudged.pop(s.event.event_id, None)

    def _remember(self, pending: Iterable[StoredEvent]) -> None:
        for s in pending:
            self._unjudged[s.event.event_id] = s
        while len(self._unjudged) > MAX_REMEMBERED:  # events whose batch died; a later mark finds them by query
            del self._unjudged[next(iter(self._unjudged))]

    def _truth_point(self, stored: StoredEvent, *, judged: bool) -> str:
        fields = _event_fields(stored.event) + f",judged={int(judged)}i"
        return _point(TRUTH, id_bucket(stored.event.event_id), fields, stored.seq)

    @staticmethod
    def _index_points(stored: StoredEvent) -> list[str]:
        fields = _event_fields(stored.event)
        return [_point(field, str(value), fields, stored.seq)
                for field in INDEXED_FIELDS if (value := stored.event.get(field)) is not None]

    def _mark_refused(self, stored: Sequence[StoredEvent], reasons: Mapping[str, str]) -> None:
        """Flag what was accepted of events refused in part, so no reader counts them."""
        lines = []
        for s in stored:
            flag = f"refused={field_string(reasons[s.event.event_id])}"
            lines.append(_point(TRUTH, id_bucket(s.event.event_id), flag, s.seq))
            lines += [_point(f, str(v), flag, s.seq) for f in INDEXED_FIELDS if (v := s.event.get(f)) is not None]
        self._send_lines(lines, tolerate_partial=True)

    def _allocate(self, count: int) -> list[int]:
        """`count` fresh seqs in arrival order: microseconds since 2025 (never going back) x 1000 + slot."""
        slot = self._ensure_slot()
        now_us = int(self.clock() * 1_000_000) - EPOCH_NS // 1000
        first = max(self._last_us + 1, now_us)
        self._last_us = first + count - 1
        return [(first + i) * SLOTS + slot for i in range(count)]

    def _ensure_slot(self) -> int:
        now = self.clock()
        if self.slot is not None and now - self._slot_checked < RECHECK_S:
            return self.slot
        candidate = self.slot
        for _ in range(20):
            slot = candidate if candidate is not None else self.rng.randrange(SLOTS)
            candidate = None
            self._send_lines([f"{LEASES},slot={slot} owner={field_string(self.owner)}"])  # server-timed
            # the slot is whoever's lease point is the earliest still live (server time, ns): a
            # writer that keeps renewing keeps it; of two claiming at once exactly one wins
            holder = next((row.get("owner") for row in self._select(
                f'SELECT "owner" FROM {LEASES} WHERE "slot" = $slot AND time > now() - {LEASE_S}s',
                {"slot": str(slot)})), None)
            if holder == self.owner:
                if slot != self.slot:
                    log.info("influxdb writer %s holds slot %d", self.owner, slot)
                self.slot, self._slot_checked = slot, now
                return slot
        raise TransientStoreError("influxdb: no free writer slot after 20 tries (too many concurrent writers?)")

    def _write_events(self, groups: list[tuple[str, list[str]]]) -> dict[str, str]:
        """Write each event's lines; return event id -> the server's reason for events it refused."""
        refused: dict[str, str] = {}
        for chunk in _chunks(groups):
            reason = self._send_lines([line for _, lines in chunk for line in lines])
            if reason is not None:
                refused.update(self._bisect(chunk, reason))
        return refused

    def _bisect(self, chunk: list[tuple[str, list[str]]], reason: str) -> dict[str, str]:
        if len(chunk) == 1:
            return {chunk[0][0]: reason}
        refused: dict[str, str] = {}
        for half in (chunk[: len(chunk) // 2], chunk[len(chunk) // 2:]):
            why = self._send_lines([line for _, lines in half for line in lines])
            if why is not None:
                refused.update(self._bisect(half, why))
        return refused

    def _send_lines(self, lines: list[str], *, tolerate_partial: bool = False) -> str | None:
        """POST lines to /write. None when all were taken; the server's reason when it refused some
        points (a partial write or a line it cannot parse); raises on anything else."""
        if not lines:
            return None
        params = {"db": self.connection.database, "precision": "ns"}
        if self.connection.retention_policy:
            params["rp"] = self.connection.retention_policy
        status, body = self._request("POST", "/write?" + urlencode(params), ("\n".join(lines) + "\n").encode(),
                                     {"Content-Type": "text/plain; charset=utf-8"}, doing="writing points")
        if status in (200, 204):
            return None
        message = _error_text(body)
        if status == 400 and ("partial write" in message or "unable to parse" in message):
            return message if not tolerate_partial else None
        raise StoreError(f"influxdb write failed ({status}): {message}")

    # ----------------------------------------------------------------------- reads

    def history(self, key_field: str, keys: Iterable[str], start_ms: int, end_ms: int,
                max_seq: int, *, min_seq: int = 0) -> list[StoredEvent]:
        measurement, attribute = key_expression(key_field)
        wanted = sorted(set(keys))
        if not wanted or max_seq <= min_seq:
            return []
        where = [f"time > {EPOCH_NS + int(min_seq)}", f"time <= {EPOCH_NS + int(max_seq)}",
                 f'"ts_ms" > {int(start_ms)}', f'"ts_ms" <= {int(end_ms)}']
        params: dict[str, str] = {}
        if attribute is None:
            column = '"key"' if key_field in INDEXED_FIELDS else '"currency"'
            values = [tag_value(k) for k in wanted] if key_field in INDEXED_FIELDS else wanted
            where.append(_any_of(column, values, "k", params))
        rows = self._rows(f"SELECT * FROM {_ident(measurement)} WHERE {' AND '.join(where)}", params)
        out = {r.stored.event.event_id: r.stored for r in rows if r.refused is None}
        if attribute is not None:
            keep = set(wanted)
            out = {i: s for i, s in out.items()
                   if (v := s.event.attributes.get(attribute)) is not None and str(v) in keep}
        return sorted(out.values(), key=lambda s: s.seq)

    def observed_since(self) -> int | None:
        """The `ts_ms` of the earliest record-of-truth point by time (= arrival) that the server
        did not refuse: first points in pages of `OBSERVED_PAGE` (refused ones are rare)."""
        after = EPOCH_NS
        while True:
            rows = list(self._select(f'SELECT "ts_ms", "refused" FROM {_ident("tx_by_" + TRUTH)} '
                                     f"WHERE time > {int(after)} ORDER BY time ASC LIMIT {OBSERVED_PAGE}", {}))
            for row in rows:
                if row.get("refused") is None and row.get("ts_ms") is not None:
                    return int(row["ts_ms"])
            if len(rows) < OBSERVED_PAGE:
                return None
            after = int(rows[-1]["time"])

    def dump(self) -> list[tuple[Any, ...]]:
        """Every stored event in seq order: (seq, judged, event_id, ts_ms, the other fields...),
        for tests and debugging (reads the whole record of truth)."""
        rows = self._rows(f"SELECT * FROM {_ident('tx_by_' + TRUTH)} WHERE time > {EPOCH_NS}", {})
        return [(r.stored.seq, int(r.judged), r.stored.event.event_id, r.stored.ts_ms,
                 *(r.stored.event.get(f) for f in TEXT_FIELDS), r.stored.event.lat, r.stored.event.lon,
                 r.stored.event.attributes or None, r.refused) for r in sorted(rows, key=lambda r: r.stored.seq)]

    def _existing(self, events: Sequence[Transaction]) -> dict[str, _Row]:
        """Stored deliveries of these events (arrived within DEDUP_WINDOW_S), by event id."""
        return self._by_event_id(sorted({e.event_id for e in events}))

    def _by_event_id(self, event_ids: Sequence[str]) -> dict[str, _Row]:
        # (bucket AND id) pairs: InfluxDB 1.x evaluates one long OR of field comparisons on every
        # point (seconds for 100 ids), but narrows pairs to each series first (milliseconds)
        params: dict[str, str] = {}
        pairs = []
        for i, event_id in enumerate(event_ids):
            params[f"b{i}"], params[f"e{i}"] = id_bucket(event_id), event_id
            pairs.append(f'("key" = $b{i} AND "event_id" = $e{i})')
        rows = self._rows(f"SELECT * FROM {_ident('tx_by_' + TRUTH)} "
                          f"WHERE time > now() - {DEDUP_WINDOW_S}s AND ({' OR '.join(pairs)})", params)
        found: dict[str, _Row] = {}
        for row in sorted(rows, key=lambda r: r.stored.seq):
            found.setdefault(row.stored.event.event_id, row)  # the first delivery wins
        return found

    def _rows(self, query: str, params: dict[str, str]) -> list[_Row]:
        return [_parse_row(row) for row in self._select(query, params)]

    def _select(self, query: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        form = {"db": self.connection.database, "q": query, "epoch": "ns", "chunked": "true", "chunk_size": "10000"}
        if self.connection.retention_policy:
            form["rp"] = self.connection.retention_policy
        if params:
            form["params"] = json.dumps(params)
        _, body = self._post("/query", form)
        for document in body.decode("utf-8").splitlines():
            if not document.strip():
                continue
            for result in json.loads(document).get("results", ()):
                if "error" in result:
                    raise StoreError(f"influxdb query failed: {result['error']}")
                for series in result.get("series", ()):
                    columns = series["columns"]
                    for values in series.get("values", ()):
                        yield dict(zip(columns, values, strict=True))

    def _post(self, path: str, form: Mapping[str, str]) -> tuple[int, bytes]:
        status, body = self._request("POST", path, urlencode(form).encode(),
                                     {"Content-Type": "application/x-www-form-urlencoded"}, doing="querying")
        if status != 200:
            raise StoreError(f"influxdb query failed ({status}): {_error_text(body)}")
        return status, body

    # ----------------------------------------------------------------------- HTTP

    def _request(self, method: str, path: str, body: bytes, headers: Mapping[str, str], *,
                 doing: str) -> tuple[int, bytes]:
        """One request; 429/5xx and connection errors retried with full-jitter backoff, then
        TransientStoreError. Returns (status, body) for anything else."""
        import urllib3

        url = self._base + path
        all_headers = {**self._headers, **headers}
        reason = ""
        for attempt in range(self.backoff.attempts):
            retry_after = 0.0
            try:
                response = self.http.request(method, url, body=body, headers=all_headers, retries=False)
            except urllib3.exceptions.HTTPError as exc:
                cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
                if isinstance(cause, urllib3.exceptions.SSLError):  # a certificate does not fix itself
                    raise StoreError(f"influxdb TLS failed while {doing} ({url}): {cause} "
                                     "(INFLUXDB_CA_BUNDLE names a CA file to trust)") from exc
                reason = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status
                if status in (401, 403):
                    raise StoreError(f"influxdb refused the credentials while {doing} ({status}): "
                                     f"{_error_text(response.data)}")
                if status == 404:
                    raise StoreError(f"influxdb while {doing}: {_error_text(response.data)} "
                                     f"(does database {self.connection.database!r} exist?)")
                message = _error_text(response.data)
                if status not in TRANSIENT_STATUS or "not found" in message:
                    return status, response.data
                reason = f"HTTP {status}: {message}"
                retry_after = _seconds(response.headers.get("Retry-After"))
            if not self.backoff.is_last(attempt):
                delay = self.backoff.delay(attempt, self.rng)
                cap = self.backoff.max_delay_s
                self.sleep(max(delay, min(cap, retry_after)) if reason.startswith("HTTP") else delay)
        raise TransientStoreError(f"influxdb busy or unreachable while {doing} after {self.backoff.attempts} attempts: "
                                  f"{reason}")

    def close(self) -> None:
        clear = getattr(self.http, "clear", None)
        if callable(clear):
            clear()


__all__ = ["HttpClient", "InfluxConnection", "InfluxTimeSeriesStore", "field_string", "tag_value"]
