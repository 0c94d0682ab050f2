"""Files written before the hit tables lost their `hit_id` primary key (layout 0; the alert
store's hits now live in their audit entries' rows) are rebuilt in place when a store opens them
(`sqlite_layout.upgrade_layout`): every row kept, with its rowid, deduplication by hit still
exact, once only when two processes open the same old file together, and nothing changed when the
rebuild fails."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from chalicelib.alerts import AlertHit, AlertPolicy, apply_hits, net_changes
from chalicelib.hits import EdgeEnd, Hit, HitEdge
from chalicelib.stores import alerts_sqlite, sqlite_graph, sqlite_graph_sql
from chalicelib.stores.alerts_sqlite import SQLiteAlertStore
from chalicelib.stores.exceptions import StoreError
from chalicelib.stores.graph_base import HitFilter
from chalicelib.stores.sqlite_graph import SQLiteGraphStore
from chalicelib.stores.sqlite_layout import layout_version, upgrade_layout

#: the hit tables (and the audit trail) as layout 0 (main before this change) declared them
OLD_GRAPH_HITS = """
CREATE TABLE graph_hits (
    hit_id TEXT PRIMARY KEY, label TEXT NOT NULL,
    from_label TEXT NOT NULL, from_key TEXT NOT NULL, to_label TEXT NOT NULL, to_key TEXT NOT NULL,
    rule_id TEXT NOT NULL, kind TEXT NOT NULL, mode TEXT NOT NULL, severity TEXT NOT NULL,
    event_id TEXT NOT NULL, account_id TEXT NOT NULL, ts TEXT NOT NULL, value REAL, threshold REAL,
    ruleset_version TEXT NOT NULL, evidence TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_graph_hits_account_ts ON graph_hits (account_id, ts);
CREATE INDEX IF NOT EXISTS ix_graph_hits_ts ON graph_hits (ts, hit_id);
CREATE INDEX IF NOT EXISTS ix_graph_hits_rule_ts ON graph_hits (rule_id, ts);
"""
OLD_ALERT_AUDIT_AND_HITS = """
CREATE TABLE IF NOT EXISTS alert_audit (
    alert_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (alert_id, version)
);
CREATE TABLE alert_hits (
    hit_id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    ts TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_alert_hits_alert ON alert_hits (alert_id, ts);
"""
POLICY = AlertPolicy(quiet_period=timedelta(hours=1))
NOW = "2026-12-01T10:00:00.000Z"


def old_graph(path: Path, hits: list[Hit]) -> None:
    """A graph file as layout 0 wrote it: its schema, hit edges upserted by hit_id."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(sqlite_graph_sql.SCHEMA + OLD_GRAPH_HITS)
    columns = sqlite_graph_sql.HIT_COLUMNS
    db.executemany(f"INSERT INTO graph_hits ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                   "ON CONFLICT (hit_id) DO NOTHING", [sqlite_graph._hit_row(h) for h in hits])
    db.close()


def old_alerts(path: Path, hits: list[AlertHit]) -> None:
    """An alert file as layout 0 wrote it: its schema, and for `hits` (new accounts) the alerts,
    pointers, audit entries and hit rows that recording them wrote, through layout 0's statements."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(alerts_sqlite.SCHEMA + OLD_ALERT_AUDIT_AND_HITS)
    by_account: dict[str, list[AlertHit]] = {}
    for h in hits:
        by_account.setdefault(h.account_id, []).append(h)
    for account_hits in by_account.values():
        changes = apply_hits(None, account_hits, POLICY, NOW)
        for _, after in net_changes(changes):
            db.execute(alerts_sqlite.INSERT_ALERT, alerts_sqlite._alert_row(after))
            db.execute(alerts_sqlite.POINT_TO_ALERT, (after.account_id, after.alert_id))
        for c in changes:
            assert c.hit is not None
            db.execute("INSERT INTO alert_audit (alert_id, version, body) VALUES (?, ?, ?)",
                       alerts_sqlite._audit_row(c)[:3])
            db.execute("INSERT INTO alert_hits (hit_id, alert_id, ts, body) VALUES (?, ?, ?, ?)",
                       (c.hit.hit_id, c.after.alert_id, c.hit.ts, orjson.dumps(c.hit.to_dict()).decode()))
    db.close()


def alert_rows(path: Path) -> dict[str, Any]:
    """What an alert file holds, whichever the layout: audit entries with their rowids, the hits
    (table or view), every other table."""
    db = sqlite3.connect(path)
    try:
        return {"audit": db.execute("SELECT rowid, alert_id, version, body FROM alert_audit ORDER BY rowid").fetchall(),
                "hits": db.execute("SELECT hit_id, alert_id, ts, body FROM alert_hits ORDER BY ts, hit_id").fetchall(),
                **{name: rows for name, rows in tables(path).items() if name not in ("alert_audit", "alert_hits")}}
    finally:
        db.close()


def tables(path: Path) -> dict[str, Any]:
    """Every table's rows: with their rowids in rowid order (those WITHOUT ROWID: sorted)."""
    db = sqlite3.connect(path)
    try:
        out = {}
        for name, sql in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            if "WITHOUT ROWID" in sql:
                out[name] = sorted(db.execute(f"SELECT * FROM {name}").fetchall())
            else:
                out[name] = db.execute(f"SELECT rowid, * FROM {name} ORDER BY rowid").fetchall()
        return out
    finally:
        db.close()


def indexes(path: Path, table: str) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                             (table,))}
    finally:
        db.close()


def version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return layout_version(db)
    finally:
        db.close()


def graph_hit(n: int, account: str, ts: str) -> Hit:
    return Hit(f"h{n}", "r1", "velocity", "enforce", "high", f"e{n}", ts, account, "account_id", account, 7, 5, "v1",
               HitEdge("VELOCITY_1M", EdgeEnd("account_id", account), EdgeEnd("ip", "1.2.3.4")),
               {"count": 7, "event_ids": [f"e{n}"]})


def alert_hit(n: int, account: str = "a1") -> AlertHit:
    return AlertHit(f"h{n:04d}", account, "velocity-1m", "medium", f"2026-12-01T09:{n // 60:02d}:{n % 60:02d}.000Z",
                    f"e{n}")


GRAPH_HITS = [graph_hit(3, "b", "2026-11-01T10:00:02.000Z"), graph_hit(1, "a", "2026-11-01T10:00:00.000Z"),
              graph_hit(2, "a", "2026-11-01T10:00:01.000Z")]
ALERT_HITS = [alert_hit(1), alert_hit(2), alert_hit(3, "a2"), alert_hit(4)]


def test_an_old_graph_is_rebuilt_with_every_hit_edge_and_still_upserts_by_hit(tmp_path: Path) -> None:
    path = tmp_path / "entity-graph.sqlite"
    old_graph(path, GRAPH_HITS)
    before = tables(path)
    assert "sqlite_autoindex_graph_hits_1" in indexes(path, "graph_hits") and version(path) == 0
    store = SQLiteGraphStore(path)
    assert tables(path) == before  # every row, with its rowid
    assert indexes(path, "graph_hits") == {"ix_graph_hits_ts", "ix_graph_hits_account_ts", "ix_graph_hits_rule_ts"}
    assert version(path) == sqlite_graph_sql.HIT_LAYOUT
    assert store.write_hits(GRAPH_HITS) == 3  # a redelivery: the edges are there already
    store.write_hits([graph_hit(4, "a", "2026-11-01T10:00:03.000Z")])
    store.commit()
    assert [h["hit_id"] for h in store.find_hits(HitFilter(), 10)] == ["h4", "h3", "h2", "h1"]
    assert [h.hit_id for h in store.hits_for_accounts(["a"], "2026-11-01T00:00:00.000Z")] == ["h1", "h2", "h4"]
    store.close()
    assert tables(path)["graph_hits"][:3] == before["graph_hits"]
    reopened = SQLiteGraphStore(path)  # a file at the current layout is left alone
    assert reopened.counts()["edges"] == 4
    reopened.close()


def test_an_old_alert_file_is_rebuilt_with_every_hit_and_still_records_each_hit_once(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite"
    old_alerts(path, ALERT_HITS)
    before = alert_rows(path)
    assert len(before["hits"]) == 4 and len(before["audit"]) == 4
    assert "sqlite_autoindex_alert_hits_1" in indexes(path, "alert_hits") and version(path) == 0
    store = SQLiteAlertStore(path)
    assert alert_rows(path) == before  # every entry with its rowid, every hit (now a view)
    assert indexes(path, "alert_audit") == {"sqlite_autoindex_alert_audit_1", "ix_alert_audit_hit"}
    assert version(path) == alerts_sqlite.AUDIT_LAYOUT
    assert store.record_hits(ALERT_HITS, POLICY, NOW) == []  # a redelivered batch counts nothing twice
    (change,) = store.record_hits([*ALERT_HITS, alert_hit(5)], POLICY, NOW)
    assert (change.hit, change.after.hit_count, change.after.version) == (alert_hit(5), 4, 4)
    assert [h.hit_id for h in store.hits_of(change.after.alert_id)] == ["h0001", "h0002", "h0004", "h0005"]
    assert [(e.version, e.action) for e in store.audit_of(change.after.alert_id)] == [
        (1, "opened"), (2, "hit"), (3, "hit"), (4, "hit")]
    store.assign(change.after.alert_id, "ann", "ann", NOW)  # a transition: an entry without a hit
    assert [e.action for e in store.audit_of(change.after.alert_id)][-1] == "assigned"
    assert len(store.hits_of(change.after.alert_id)) == 4
    store.close()


def test_an_alert_file_whose_hit_has_no_audit_entry_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite"
    old_alerts(path, ALERT_HITS)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DELETE FROM alert_audit WHERE version = 2")
    db.close()
    before = alert_rows(path)
    with pytest.raises(StoreError, match="1 recorded hit") as refused:
        SQLiteAlertStore(path)
    assert str(path) in str(refused.value)  # which file, for the operator
    assert alert_rows(path) == before and version(path) == 0


def test_a_failed_rebuild_leaves_the_old_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "entity-graph.sqlite"
    old_graph(path, GRAPH_HITS)
    before = tables(path)

    def half_way(db: sqlite3.Connection, found: int) -> None:
        db.execute("DROP TABLE graph_hits")
        raise RuntimeError("killed half-way")

    monkeypatch.setattr(sqlite_graph, "upgrade_hits", half_way)
    with pytest.raises(RuntimeError, match="half-way"):
        SQLiteGraphStore(path)
    assert tables(path) == before and version(path) == 0
    monkeypatch.undo()
    SQLiteGraphStore(path).close()
    assert tables(path) == before and version(path) == sqlite_graph_sql.HIT_LAYOUT


def _open_together(path: str, which: str, barrier: Any, results: Any) -> None:
    """In a process of its own: wait for the other, then upgrade the file as the store does, slowly."""
    upgrade: Callable[[sqlite3.Connection, int], None] = (
        sqlite_graph_sql.upgrade_hits if which == "graph" else alerts_sqlite._upgrade_audit)

    def slow(db: sqlite3.Connection, found: int) -> None:
        import time

        time.sleep(0.3)  # the other process reaches its BEGIN IMMEDIATE meanwhile
        upgrade(db, found)

    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    barrier.wait()
    results.put(upgrade_layout(db, 1, slow))
    db.close()


@pytest.mark.parametrize("which", ["graph", "alerts"])
def test_two_processes_opening_one_old_file_upgrade_it_once(tmp_path: Path, which: str) -> None:
    path = tmp_path / f"{which}.sqlite"
    if which == "graph":
        old_graph(path, GRAPH_HITS)
    else:
        old_alerts(path, ALERT_HITS)
    before = tables(path) if which == "graph" else alert_rows(path)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_open_together, args=(str(path), which, barrier, results)) for _ in range(2)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(30)
    assert [p.exitcode for p in processes] == [0, 0]
    assert sorted([results.get(timeout=5), results.get(timeout=5)]) == [False, True]
    assert (tables(path) if which == "graph" else alert_rows(path)) == before and version(path) == 1
