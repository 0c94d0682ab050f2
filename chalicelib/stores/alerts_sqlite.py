"""The embedded alert store: `alerts.sqlite` in the data directory (WAL), the `AlertStore`
primitives in SQL with bound parameters only."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ClassVar

import orjson

from chalicelib.alerts import Alert, AlertChange, AlertFilter, AlertHit, AuditEntry, Notification, net_changes
from chalicelib.stores.alerts import AlertStore, HitRecordedError, OrderKey, StaleAlertError, notification_for
from chalicelib.stores.exceptions import StoreError
from chalicelib.stores.sqlite import immediate_transaction, open_sqlite, sqlite_errors, translate_sqlite_error
from chalicelib.stores.sqlite_layout import execute_each, upgrade_layout

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    status TEXT NOT NULL,
    assignee TEXT,
    severity_rank INTEGER NOT NULL,
    last_hit_ts TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_alerts_order ON alerts (severity_rank, last_hit_ts, alert_id);
CREATE TABLE IF NOT EXISTS alert_accounts (account_id TEXT PRIMARY KEY, alert_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alert_outbox (
    alert_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_alert_outbox_due ON alert_outbox (status, next_attempt_at);
"""
#: The layout of the audit trail and the recorded hits (`PRAGMA user_version`; `sqlite_layout`).
#: Layout 1: a change's hit is kept in its audit entry's row (`hit_id`, `hit_ts`, `hit_body`; NULL
#: for a transition without a hit), and `alert_hits` is a view of those rows. Every hit has exactly
#: one audit entry, written with it, so the rows are the same; what goes is a table with its own
#: random-order indexes (`hit_id`, and alert id + ts): a page written per hit per batch for each. A
#: hit is recorded once by (hit_ts, hit_id), an index in time order (a hit's ts is its event's, and
#: an event's content is what the time-series store kept for its id, so the same hit always comes
#: with the same ts); an alert's hits are read through the audit key (alert id, version). Layout 0
#: (`alert_hits` a table keyed by `hit_id` beside `alert_audit`) is rebuilt on open.
AUDIT_LAYOUT = 1
AUDIT_TABLE = """
CREATE TABLE {table} (
    alert_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    hit_id TEXT,
    hit_ts TEXT,
    hit_body TEXT,
    PRIMARY KEY (alert_id, version)
)
"""
AUDIT_INDEXES = """
CREATE UNIQUE INDEX ix_alert_audit_hit ON alert_audit (hit_ts, hit_id);
CREATE VIEW alert_hits AS SELECT hit_id, alert_id, hit_ts AS ts, hit_body AS body FROM alert_audit
    WHERE hit_id IS NOT NULL;
"""
#: layout 0's rows, each audit entry with the hit it recorded (the `hit_id` its changes name)
AUDIT_ROWS_OF_LAYOUT_0 = """
SELECT a.rowid, a.alert_id, a.version, a.body, h.hit_id, h.ts, h.body FROM alert_audit a
LEFT JOIN alert_hits h ON h.alert_id = a.alert_id AND h.hit_id = json_extract(a.body, '$.changes.hit_id[1]')
ORDER BY a.rowid
"""


def _translate(exc: sqlite3.Error, doing: str) -> StoreError:
    return translate_sqlite_error(exc, doing, "alert store")


INSERT_ALERT = ("INSERT INTO alerts (account_id, status, assignee, severity_rank, last_hit_ts, version, body, "
                "alert_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
UPDATE_ALERT = ("UPDATE alerts SET account_id = ?, status = ?, assignee = ?, severity_rank = ?, last_hit_ts = ?, "
                "version = ?, body = ? WHERE alert_id = ? AND version = ?")
POINT_TO_ALERT = "INSERT OR REPLACE INTO alert_accounts (account_id, alert_id) VALUES (?, ?)"
#: an audit entry with the hit it records (NULLs for a change without a hit)
INSERT_AUDIT = ("INSERT INTO alert_audit (alert_id, version, body, hit_id, hit_ts, hit_body) "
                "VALUES (?, ?, ?, ?, ?, ?)")
#: those of the (ts, hit_id) pairs (one JSON list) recorded already, through the unique index
RECORDED_HITS = ("SELECT hit_id FROM alert_audit WHERE (hit_ts, hit_id) IN "
                 "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))")


# The bodies the pipeline writes per hit are JSON text made by orjson (the reads are `json.loads`,
# which reads it as it reads `json.dumps`' text: the same values). An audit entry is serialised
# from its fields as they are: `to_dict` copies its changes, which a serialiser has no need of.


def _body(value: dict[str, Any]) -> str:
    return orjson.dumps(value).decode()


def _alert_row(alert: Alert) -> tuple[Any, ...]:
    """The alert as INSERT_ALERT's parameters (UPDATE_ALERT's, without the version checked)."""
    return (alert.account_id, alert.status, alert.assignee, alert.severity_rank, alert.last_hit_ts, alert.version,
            _body(alert.to_dict()), alert.alert_id)


def _audit_row(change: AlertChange) -> tuple[str, int, str, str | None, str | None, str | None]:
    """INSERT_AUDIT's parameters: the change's audit entry and its hit."""
    audit, hit = change.audit, change.hit
    body = _body({"alert_id": audit.alert_id, "at": audit.at, "actor": audit.actor, "action": audit.action,
                  "changes": audit.changes, "version": audit.version})
    if hit is None:
        return change.after.alert_id, audit.version, body, None, None, None
    return change.after.alert_id, audit.version, body, hit.hit_id, hit.ts, _body(hit.to_dict())


def _upgrade_audit(db: sqlite3.Connection, found: int) -> None:
    """Layout 0 -> 1 (inside `upgrade_layout`'s transaction): each audit entry copied, with its
    rowid, into the new table together with the hit it recorded; every hit must find its entry
    (both were written in one transaction), else nothing changes."""
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alert_audit'").fetchone()
    if exists is None:  # a new file
        db.execute(AUDIT_TABLE.format(table="alert_audit"))
    else:
        db.execute(AUDIT_TABLE.format(table="alert_audit_new"))
        db.execute("INSERT INTO alert_audit_new (rowid, alert_id, version, body, hit_id, hit_ts, hit_body) "
                   + AUDIT_ROWS_OF_LAYOUT_0)
        (moved,) = db.execute("SELECT COUNT(*) FROM alert_audit_new WHERE hit_id IS NOT NULL").fetchone()
        (hits,) = db.execute("SELECT COUNT(*) FROM alert_hits").fetchone()
        if moved != hits:
            path = db.execute("PRAGMA database_list").fetchone()[2]
            raise StoreError(f"alert store {path}: {hits - moved} recorded hit(s) have no audit entry naming them; "
                             "the file is left in its old layout (restore it from a backup, or move it aside to "
                             "start an empty inbox)")
        db.execute("DROP TABLE alert_hits")
        db.execute("DROP TABLE alert_audit")
        db.execute("ALTER TABLE alert_audit_new RENAME TO alert_audit")
    execute_each(db, AUDIT_INDEXES)


class SQLiteAlertStore(AlertStore):
    """One SQLite file (WAL); each workflow call is one `BEGIN IMMEDIATE` transaction, so writers
    from several processes (the pipeline, `serve`) queue instead of interleaving."""

    backend: ClassVar[str] = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self._db = open_sqlite(path, SCHEMA, busy_timeout_s, translate=_translate)
        try:
            with self._errors("laying out the recorded hits"):
                upgrade_layout(self._db, AUDIT_LAYOUT, _upgrade_audit)
        except BaseException:
            self._db.close()
            raise

    @contextmanager
    def _batch(self) -> Iterator[None]:
        with sqlite_errors(_translate, "writing alerts"), immediate_transaction(self._db):
            yield

    def _recorded_hits(self, hits: Sequence[AlertHit]) -> set[str]:
        rows = self._db.execute(RECORDED_HITS, (json.dumps([[h.ts, h.hit_id] for h in hits]),))
        return {row[0] for row in rows}

    def _latest_alert(self, account_id: str) -> Alert | None:
        row = self._db.execute("SELECT a.body FROM alert_accounts p JOIN alerts a ON a.alert_id = p.alert_id "
                               "WHERE p.account_id = ?", (account_id,)).fetchone()
        return None if row is None else Alert.from_dict(json.loads(row[0]))

    def _latest_alerts(self, account_ids: Sequence[str]) -> dict[str, Alert]:
        rows = self._db.execute("SELECT p.account_id, a.body FROM alert_accounts p JOIN alerts a ON a.alert_id = "
                                "p.alert_id WHERE p.account_id IN (SELECT value FROM json_each(?))",
                                (json.dumps(list(account_ids)),))
        return {account_id: Alert.from_dict(json.loads(body)) for account_id, body in rows}

    def _commit_changes(self, changes: Sequence[AlertChange]) -> int:
        (outcome,) = self._commit_accounts([changes])
        if isinstance(outcome, StoreError):
            raise outcome
        return outcome

    def _commit_accounts(self, groups: Sequence[Sequence[AlertChange]]) -> list[int | StoreError]:
        """Every account's changes in one go: checked first (the hits not recorded, the pointer
        naming the alert they were computed over, that alert's version), in three reads for all
        accounts; then each alert written once (its state after its last change), every audit
        entry and hit, the pointers to new alerts and the outbox entries, one statement for each
        kind. The reads and writes are inside the caller's `BEGIN IMMEDIATE` transaction, so no
        other writer comes between them."""
        db = self._db
        hits_given = [c.hit for changes in groups for c in changes if c.hit is not None]
        recorded = self._recorded_hits(hits_given) if hits_given else set()
        accounts = [changes[0].after.account_id for changes in groups]
        pointers = dict(db.execute("SELECT account_id, alert_id FROM alert_accounts "
                                   "WHERE account_id IN (SELECT value FROM json_each(?))", (json.dumps(accounts),)))
        existing = [changes[0].before.alert_id for changes in groups if changes[0].before is not None]
        versions = dict(db.execute("SELECT alert_id, version FROM alerts WHERE alert_id IN "
                                   "(SELECT value FROM json_each(?))", (json.dumps(existing),))) if existing else {}
        outcomes: list[int | StoreError] = []
        updates: list[tuple[Any, ...]] = []
        inserts: list[tuple[Any, ...]] = []
        latest: list[tuple[str, str]] = []
        audits: list[tuple[str, int, str, str | None, str | None, str | None]] = []
        notify: list[Notification] = []
        for changes, account_id in zip(groups, accounts, strict=True):
            first = changes[0]
            seen = [c.hit.hit_id for c in changes if c.hit is not None and c.hit.hit_id in recorded]
            if seen:
                outcomes.append(HitRecordedError(seen[0]))
                continue
            expected = first.before.alert_id if first.before is not None else first.supersedes
            if pointers.get(account_id) != expected or (
                    first.before is not None and versions.get(first.before.alert_id) != first.before.version):
                outcomes.append(StaleAlertError(account_id))
                continue
            # over the account's latest alert only the first alert touched can exist already (every
            # later one is opened by the changes): one update at most, checked above
            for before, after in net_changes(changes):
                row = _alert_row(after)
                if before is None:
                    inserts.append(row)
                    latest.append((account_id, after.alert_id))
                else:
                    updates.append((*row, before.version))
            audits.extend(_audit_row(c) for c in changes)
            notify.extend(notification_for(c) for c in changes if c.notify)
            outcomes.append(len(changes))
        if updates:
            updated = db.executemany(UPDATE_ALERT, updates)
            if updated.rowcount != len(updates):  # checked above, in this transaction: cannot happen
                raise StoreError(f"alert store: {len(updates) - updated.rowcount} alert(s) changed while written")
        if inserts:
            db.executemany(INSERT_ALERT, inserts)
            db.executemany(POINT_TO_ALERT, latest)
        if audits:
            db.executemany(INSERT_AUDIT, audits)
        for notification in notify:
            self._save(notification, insert=True)
        return outcomes

    def _commit(self, change: AlertChange) -> None:
        after, db = change.after, self._db
        if change.hit is not None and self._recorded_hits([change.hit]):
            raise HitRecordedError(change.hit.hit_id)
        row = _alert_row(after)
        # a new alert, and a hit (computed over the account's latest alert), need the pointer unchanged
        if change.before is None or change.hit is not None:
            expected = change.supersedes if change.before is None else change.before.alert_id
            pointer = db.execute("SELECT alert_id FROM alert_accounts WHERE account_id = ?",
                                 (after.account_id,)).fetchone()
            if (pointer[0] if pointer else None) != expected:
                raise StaleAlertError(after.account_id)
        if change.before is None:
            db.execute(INSERT_ALERT, row)
            db.execute(POINT_TO_ALERT, (after.account_id, after.alert_id))
        else:
            updated = db.execute(UPDATE_ALERT, (*row, change.before.version))
            if updated.rowcount != 1:
                raise StaleAlertError(after.alert_id)
        db.execute(INSERT_AUDIT, _audit_row(change))
        if change.notify:
            self._save(notification_for(change), insert=True)

    def alert(self, alert_id: str) -> Alert | None:
        with self._errors("reading an alert"):
            row = self._db.execute("SELECT body FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        return None if row is None else Alert.from_dict(json.loads(row[0]))

    def list_alerts(self, where: AlertFilter, limit: int, after: OrderKey | None = None) -> list[Alert]:
        clauses: list[str] = ["1 = 1"]  # only fixed text below; values are bound parameters
        params: list[str | int] = []
        if where.status is not None:
            clauses.append("status = ?")
            params.append(where.status)
        if where.assignee is not None:
            clauses.append("assignee = ?")
            params.append(where.assignee)
        if where.account is not None:
            clauses.append("account_id = ?")
            params.append(where.account)
        if where.rule is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(json_extract(body, '$.rules')) WHERE value = ?)")
            params.append(where.rule)
        if after is not None:
            clauses.append("(severity_rank, last_hit_ts, alert_id) < (?, ?, ?)")
            params.extend(after)
        with self._errors("listing alerts"):
            rows = self._db.execute(f"SELECT body FROM alerts WHERE {' AND '.join(clauses)} "
                                    "ORDER BY severity_rank DESC, last_hit_ts DESC, alert_id DESC LIMIT ?",
                                    (*params, limit)).fetchall()
        return [Alert.from_dict(json.loads(row[0])) for row in rows]

    def hits_of(self, alert_id: str) -> list[AlertHit]:
        with self._errors("reading an alert's hits"):
            rows = self._db.execute("SELECT hit_body FROM alert_audit WHERE alert_id = ? AND hit_id IS NOT NULL "
                                    "ORDER BY hit_ts, hit_id", (alert_id,)).fetchall()
        return [AlertHit(**json.loads(row[0])) for row in rows]

    def audit_of(self, alert_id: str) -> list[AuditEntry]:
        with self._errors("reading an alert's audit trail"):
            rows = self._db.execute("SELECT body FROM alert_audit WHERE alert_id = ? ORDER BY version",
                                    (alert_id,)).fetchall()
        return [AuditEntry(**json.loads(row[0])) for row in rows]

    def due_notifications(self, now: str, limit: int) -> list[Notification]:
        with self._errors("reading the outbox"):
            rows = self._db.execute("SELECT body FROM alert_outbox WHERE status = 'pending' AND next_attempt_at <= ? "
                                    "ORDER BY next_attempt_at, alert_id LIMIT ?", (now, limit)).fetchall()
        return [Notification(**json.loads(row[0])) for row in rows]

    def save_notification(self, notification: Notification) -> None:
        with self._errors("writing the outbox"):
            self._save(notification, insert=False)

    def notification(self, alert_id: str) -> Notification | None:
        with self._errors("reading the outbox"):
            row = self._db.execute("SELECT body FROM alert_outbox WHERE alert_id = ?", (alert_id,)).fetchone()
        return None if row is None else Notification(**json.loads(row[0]))

    def _save(self, n: Notification, *, insert: bool) -> None:
        body = json.dumps({"alert_id": n.alert_id, "payload": n.payload, "attempts": n.attempts,
                           "next_attempt_at": n.next_attempt_at, "status": n.status, "last_error": n.last_error})
        verb = "INSERT" if insert else "INSERT OR REPLACE"
        self._db.execute(f"{verb} INTO alert_outbox (alert_id, status, next_attempt_at, body) VALUES (?, ?, ?, ?)",
                         (n.alert_id, n.status, n.next_attempt_at, body))

    def close(self) -> None:
        self._db.close()

    def _errors(self, doing: str) -> AbstractContextManager[None]:
        return sqlite_errors(_translate, doing)
