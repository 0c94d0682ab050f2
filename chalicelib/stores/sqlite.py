"""The embedded time-series store: one SQLite file in WAL mode.

Arrival order is the table's `seq` (AUTOINCREMENT, so a seq is never reused). Writes are one
transaction per batch (`BEGIN IMMEDIATE`, so concurrent writers queue rather than interleave);
reads select by key through an index per key field, (key, seq, ts_ms), and pass key lists as one
JSON parameter, so no value from a record ever becomes SQL text. The index leads with seq after the
key so a delta read (`min_seq > 0`) costs what each key stored since that mark, whatever its
history; ts_ms in the index filters a window read without touching the table.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from chalicelib.events import StoredEvent, Transaction, attribute_name, from_epoch_ms
from chalicelib.retry import Backoff
from chalicelib.stores.base import ALL_ATTRIBUTES, TimeSeriesStore, WindowRow, WriteResult
from chalicelib.stores.exceptions import StoreError, TransientStoreError

COLUMNS = ("event_id", "ts_ms", "account_id", "amount", "currency", "merchant_id", "ip",
           "device_id", "email", "phone", "card_id", "lat", "lon", "attributes")
_TEXT_COLUMNS = frozenset(COLUMNS) - {"ts_ms", "amount", "lat", "lon", "attributes"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    ts_ms INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT, merchant_id TEXT, ip TEXT, device_id TEXT, email TEXT, phone TEXT, card_id TEXT,
    lat REAL, lon REAL,
    attributes TEXT,
    judged INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_events_account_id_seq_ts ON events (account_id, seq, ts_ms);
"""


def key_expression(key_field: str) -> str:
    """The SQL expression for a key field. Only known columns and checked attribute names get here."""
    if key_field in _TEXT_COLUMNS:
        return key_field
    name = attribute_name(key_field)
    if name:
        return f"CAST(json_extract(attributes, '$.{name}') AS TEXT)"
    raise StoreError(
        f"cannot key history by {key_field!r}: use an identifier field or attributes.NAME "
        "(letters, digits, underscore)"
    )


class SQLiteTimeSeriesStore(TimeSeriesStore):
    #: seq is AUTOINCREMENT under `BEGIN IMMEDIATE`: writers commit in seq order, one at a time
    exact_arrival: ClassVar[bool] = True

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._db = open_sqlite(path, SCHEMA, busy_timeout_s, translate=_translate)
        self._indexed: set[str] = {"account_id"}

    def prepare(self, key_fields: Iterable[str]) -> None:
        for key_field in set(key_fields) - self._indexed:
            name = "ix_events_" + re.sub(r"[^a-z0-9_]", "_", key_field.lower()) + "_seq_ts"
            with self._errors(f"indexing {key_field}"):
                self._db.execute(
                    f"CREATE INDEX IF NOT EXISTS {name} ON events ({key_expression(key_field)}, seq, ts_ms)")
            self._indexed.add(key_field)

    def write(self, events: Sequence[Transaction]) -> WriteResult:
        ids = json.dumps([e.event_id for e in events])
        with self._errors("writing events"), self._transaction():
            existing = {row[0] for row in self._db.execute(
                "SELECT event_id FROM events WHERE event_id IN (SELECT value FROM json_each(?))", (ids,))}
            fresh: dict[str, Transaction] = {}
            for event in events:
                if event.event_id not in existing:
                    fresh.setdefault(event.event_id, event)
            self._db.executemany(
                f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                [_row(e) for e in fresh.values()],
            )
            unjudged = self._db.execute(
                "SELECT seq, event_id FROM events "
                "WHERE judged = 0 AND event_id IN (SELECT value FROM json_each(?)) ORDER BY seq", (ids,)).fetchall()
            # Fresh events are stored exactly as given; only earlier deliveries are read back.
            earlier = json.dumps([event_id for _, event_id in unjudged if event_id not in fresh])
            stored = {} if earlier == "[]" else {row[1]: _stored(row) for row in self._db.execute(
                f"SELECT seq, {', '.join(COLUMNS)} FROM events WHERE event_id IN (SELECT value FROM json_each(?))",
                (earlier,))}
        pending = [StoredEvent(seq, fresh[event_id], fresh[event_id].ts_ms) if event_id in fresh
                   else stored[event_id] for seq, event_id in unjudged]
        return WriteResult(frozenset(fresh), tuple(pending))

    def history(self, key_field: str, keys: Iterable[str], start_ms: int, end_ms: int,
                max_seq: int, *, min_seq: int = 0) -> list[StoredEvent]:
        rows = self._select(f"seq, {', '.join(COLUMNS)}", key_field, keys, start_ms, end_ms, max_seq, min_seq)
        return [_stored(row) for row in rows]

    def window_rows(self, key_field: str, keys: Iterable[str], start_ms: int, end_ms: int,
                    max_seq: int, fields: Sequence[str], *, min_seq: int = 0) -> list[WindowRow]:
        columns = ["ts_ms", "seq", "event_id"]
        convert: list[tuple[int, Any]] = []  # (position, converter) for values SQLite cannot give as-is
        for position, name in enumerate(fields, start=3):
            attribute = attribute_name(name)
            if name == "amount":
                columns.append("amount")
                convert.append((position, Decimal))
            elif name == "ts":  # a `where` on the time
                columns.append("ts_ms")
                convert.append((position, from_epoch_ms))
            elif attribute or name == ALL_ATTRIBUTES:
                columns.append("attributes")
                convert.append((position, _attribute_reader(attribute)))
            elif name in COLUMNS and name != "attributes":
                columns.append(name)
            else:
                columns.append("NULL")  # not an event field: Transaction.get gives None too
        rows = self._select(", ".join(columns), key_field, keys, start_ms, end_ms, max_seq, min_seq)
        if not convert:
            return rows
        out = []
        for row in rows:
            values = list(row)
            for position, converter in convert:
                values[position] = converter(values[position])
            out.append(tuple(values))
        return out

    def _select(self, columns: str, key_field: str, keys: Iterable[str], start_ms: int, end_ms: int,
                max_seq: int, min_seq: int) -> list[Any]:
        self.prepare([key_field])
        expression = key_expression(key_field)
        with self._errors(f"reading history by {key_field}"):
            return self._db.execute(
                f"SELECT {columns} FROM events "
                "WHERE seq > ? AND seq <= ? "
                f"AND {expression} IN (SELECT value FROM json_each(?)) "
                "AND ts_ms > ? AND ts_ms <= ? ORDER BY seq",
                (min_seq, max_seq, json.dumps(sorted(keys)), start_ms, end_ms),
            ).fetchall()

    def observed_since(self) -> int | None:
        # seq is the rowid (INTEGER PRIMARY KEY): the first row is one step into the table's b-tree
        with self._errors("reading the observation start"):
            row = self._db.execute("SELECT ts_ms FROM events ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else int(row[0])

    def mark_judged(self, event_ids: Iterable[str]) -> None:
        with self._errors("marking events judged"), self._transaction():
            self._db.execute("UPDATE events SET judged = 1 WHERE event_id IN (SELECT value FROM json_each(?))",
                             (json.dumps(list(event_ids)),))

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def dump(self) -> list[tuple[Any, ...]]:
        """Every stored row in seq order (for tests and debugging)."""
        return self._db.execute(f"SELECT seq, judged, {', '.join(COLUMNS)} FROM events ORDER BY seq").fetchall()

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> AbstractContextManager[None]:
        return immediate_transaction(self._db)

    def _errors(self, doing: str) -> AbstractContextManager[None]:
        return sqlite_errors(_translate, doing)


@contextmanager
def immediate_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction that takes the write lock first (`BEGIN IMMEDIATE`), so writers from
    several processes queue instead of interleaving; rolled back on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def open_sqlite(path: str | Path, schema: str, busy_timeout_s: float,
                translate: Callable[[sqlite3.Error, str], StoreError]) -> sqlite3.Connection:
    """A connection in autocommit mode (the stores open their own transactions), WAL, a page cache
    of `PAGE_CACHE_KIB`, with the schema applied; the parent folder is made for a file path."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        _switch_to_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        db.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        db.executescript(schema)
    except sqlite3.Error as exc:
        raise translate(exc, f"opening {path}") from exc
    return db


#: Pages the WAL may grow to before a commit checkpoints it into the database (SQLite's default is
#: 1,000). A batch of random-key index updates (hit and alert ids, relationships) writes hundreds
#: of pages, so at the default every other batch paid a checkpoint (two fsyncs, and pages copied
#: again that the next batch rewrites); at 10,000 (about 40 MB of WAL per file) a checkpoint comes
#: every few dozen batches. Durability is the same: with synchronous=NORMAL a commit never fsyncs.
WAL_CHECKPOINT_PAGES = 10_000

#: Every connection's page cache, in KiB (SQLite's default is 2 MiB). The stores' reads and
#: writes land on random-key index pages spread over the whole file (a batch's keys in the time
#: series, its accounts' neighbourhoods in the graph, hit and alert ids in the alert store): with
#: the default, a file of more than a few MB is read back from the OS page by page in every batch,
#: so the cost per event grows with history (micro rules over 30 simulated days: SQL time 3.7 s at
#: the default, 2.8 s with this). An upper bound, allocated only as pages are read.
PAGE_CACHE_KIB = 64 * 1024

#: Switching a new file to WAL can fail at once with "database is locked" while another process
#: opens it too (SQLite does not wait for that lock), so the switch is retried by the retry policy.
_WAL_SWITCH = Backoff(attempts=10, base_delay_s=0.02, max_delay_s=0.5)
_wal_rng = random.Random()


def _switch_to_wal(db: sqlite3.Connection, sleep: Callable[[float], None] = time.sleep) -> None:
    for attempt in range(_WAL_SWITCH.attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or _WAL_SWITCH.is_last(attempt):
                raise
            sleep(_WAL_SWITCH.delay(attempt, _wal_rng))


@contextmanager
def sqlite_errors(translate: Callable[[sqlite3.Error, str], StoreError], doing: str) -> Iterator[None]:
    """Raise what `translate` makes of any sqlite3 error inside the block."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc, doing) from exc


def translate_sqlite_error(exc: sqlite3.Error, doing: str, store: str) -> StoreError:
    """Locked, busy and I/O errors are transient (redelivery may succeed); the rest are not."""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text or "disk i/o" in text):
        return TransientStoreError(f"{store} busy while {doing}: {exc}")
    return StoreError(f"{store} failed while {doing}: {exc}")


def _translate(exc: sqlite3.Error, doing: str) -> StoreError:
    return translate_sqlite_error(exc, doing, "sqlite store")


def _row(event: Transaction) -> tuple[Any, ...]:
    return (
        event.event_id, event.ts_ms, event.account_id, str(event.amount), event.currency,
        event.merchant_id, event.ip, event.device_id, event.email, event.phone, event.card_id,
        event.lat, event.lon, json.dumps(event.attributes) if event.attributes else None,
    )


def _attribute_reader(name: str | None) -> Any:
    """attributes JSON text -> the named attribute (or the whole mapping when name is None)."""
    def read(text: str | None) -> Any:
        attributes = json.loads(text) if text else {}
        return attributes if name is None else attributes.get(name)
    return read


def _stored(row: Sequence[Any]) -> StoredEvent:
    (seq, event_id, ts_ms, account_id, amount, currency, merchant_id, ip, device_id, email, phone,
     card_id, lat, lon, attributes) = row
    # Rows were validated on the way in; model_construct skips validating them again.
    event = Transaction.model_construct(
        event_id=event_id, ts=from_epoch_ms(ts_ms), account_id=account_id, amount=Decimal(amount),
        currency=currency, merchant_id=merchant_id, ip=ip, device_id=device_id, email=email,
        phone=phone, card_id=card_id, lat=lat, lon=lon,
        attributes=json.loads(attributes) if attributes else {},
    )
    return StoredEvent(seq, event, ts_ms)
