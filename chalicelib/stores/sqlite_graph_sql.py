"""The embedded graph file's tables and statements (`sqlite_graph`), and how an older file's
tables are brought up to date. Key lists are passed as one JSON parameter: no value from a record
ever becomes SQL text."""

from __future__ import annotations

import sqlite3

from chalicelib.stores.graph_base import HIT_PROPERTIES
from chalicelib.stores.sqlite_layout import execute_each

SCHEMA = """
CREATE TABLE IF NOT EXISTS graph_vertices (
    label TEXT NOT NULL, key TEXT NOT NULL, first_seen TEXT NOT NULL,
    PRIMARY KEY (label, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS graph_relationships (
    account TEXT NOT NULL, label TEXT NOT NULL, target_label TEXT NOT NULL, target_key TEXT NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, use_count INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (account, label, target_label, target_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS graph_counted_events (event_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_graph_relationships_target
    ON graph_relationships (target_label, target_key, label, account);
"""
#: The layout of the hit edges (`PRAGMA user_version`; `sqlite_layout`). Layout 1: `graph_hits` has
#: no key of its own; a hit edge is unique by (ts, hit_id), the index that also serves the
#: time-ordered reads. A hit's ts is its event's, and an event's content is what the time-series
#: store kept for its id, so the same hit always comes with the same ts: the edge is upserted by
#: (ts, hit_id) exactly as it was by hit_id, without a B-tree in random hit-id order (one page
#: written per hit per batch). Layout 0 (`hit_id TEXT PRIMARY KEY`) is rebuilt on open.
HIT_LAYOUT = 1
HIT_TABLE = """
CREATE TABLE {table} (
    hit_id TEXT NOT NULL, label TEXT NOT NULL,
    from_label TEXT NOT NULL, from_key TEXT NOT NULL, to_label TEXT NOT NULL, to_key TEXT NOT NULL,
    rule_id TEXT NOT NULL, kind TEXT NOT NULL, mode TEXT NOT NULL, severity TEXT NOT NULL,
    event_id TEXT NOT NULL, account_id TEXT NOT NULL, ts TEXT NOT NULL, value REAL, threshold REAL,
    ruleset_version TEXT NOT NULL, evidence TEXT NOT NULL
)
"""
HIT_INDEXES = """
CREATE UNIQUE INDEX ix_graph_hits_ts ON graph_hits (ts, hit_id);
CREATE INDEX ix_graph_hits_account_ts ON graph_hits (account_id, ts);
CREATE INDEX ix_graph_hits_rule_ts ON graph_hits (rule_id, ts);
"""

UPSERT_VERTEX = """
INSERT INTO graph_vertices (label, key, first_seen) VALUES (?, ?, ?)
ON CONFLICT (label, key) DO UPDATE SET first_seen = excluded.first_seen
WHERE excluded.first_seen < graph_vertices.first_seen
"""
#: the last value is the number of the batch's events new to the graph that used the relationship
UPSERT_RELATIONSHIP = """
INSERT INTO graph_relationships (account, label, target_label, target_key, first_seen, last_seen, use_count)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (account, label, target_label, target_key) DO UPDATE SET
    first_seen = min(graph_relationships.first_seen, excluded.first_seen),
    last_seen = max(graph_relationships.last_seen, excluded.last_seen),
    use_count = graph_relationships.use_count + excluded.use_count
WHERE excluded.first_seen < graph_relationships.first_seen OR excluded.last_seen > graph_relationships.last_seen
    OR excluded.use_count > 0
"""
#: records the batch's events as counted and returns those not counted before, in one statement:
#: an event already recorded (a redelivery, or another writer's batch) is ignored and not returned
COUNT_EVENTS = ("INSERT OR IGNORE INTO graph_counted_events (event_id) SELECT value FROM json_each(?) "
                "RETURNING event_id")
HIT_COLUMNS = ("hit_id", "label", "from_label", "from_key", "to_label", "to_key", *HIT_PROPERTIES[1:], "evidence")
INSERT_HIT = (f"INSERT INTO graph_hits ({', '.join(HIT_COLUMNS)}) VALUES ({', '.join('?' * len(HIT_COLUMNS))}) "
              "ON CONFLICT (ts, hit_id) DO NOTHING")
#: one hop: the identifiers (of the listed relationship labels) of the listed accounts, each with
#: every account that has it, how often that account used it, and how often it used any of that label
IDENTIFIERS_OF = """
WITH mine AS (
    SELECT DISTINCT target_label, target_key, label FROM graph_relationships
    WHERE account IN (SELECT value FROM json_each(?1)) AND label IN (SELECT value FROM json_each(?2))
)
SELECT m.target_label, m.target_key, r.account, r.use_count,
       (SELECT sum(t.use_count) FROM graph_relationships t WHERE t.account = r.account AND t.label = r.label)
FROM mine m
JOIN graph_relationships r ON r.target_label = m.target_label AND r.target_key = m.target_key AND r.label = m.label
"""
MEMBERS = """
SELECT r.target_label, r.target_key, r.account, r.use_count,
       (SELECT sum(t.use_count) FROM graph_relationships t WHERE t.account = r.account AND t.label = r.label)
FROM graph_relationships r WHERE r.label IN (SELECT value FROM json_each(?))
"""
KNOWN_ACCOUNTS = ("SELECT key FROM graph_vertices WHERE label = 'Account' "
                  "AND key IN (SELECT value FROM json_each(?))")
#: what the link mirror is filled from (one scan of each)
MIRROR_LINKS = ("SELECT account, label, target_label, target_key, use_count FROM graph_relationships "
                "WHERE label IN (SELECT value FROM json_each(?)) LIMIT ?")
MIRROR_ACCOUNTS = "SELECT key FROM graph_vertices WHERE label = 'Account'"

def add_use_counts(db: sqlite3.Connection) -> None:
    """A graph written before use counts were kept gets the column; its links count as used once."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(graph_relationships)")}
    if "use_count" not in columns:
        try:
            db.execute("ALTER TABLE graph_relationships ADD COLUMN use_count INTEGER NOT NULL DEFAULT 1")
        except sqlite3.OperationalError as exc:  # another process added it first
            if "duplicate column" not in str(exc).lower():
                raise


def upgrade_hits(db: sqlite3.Connection, found: int) -> None:
    """Layout 0 -> 1 (inside `upgrade_layout`'s transaction): the hit edges copied into the new
    table with their rowids (reads without an ORDER BY keep their order), the old table dropped."""
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'graph_hits'").fetchone()
    if exists is None:  # a new file
        db.execute(HIT_TABLE.format(table="graph_hits"))
    else:
        columns = ", ".join(HIT_COLUMNS)
        db.execute(HIT_TABLE.format(table="graph_hits_new"))
        db.execute(f"INSERT INTO graph_hits_new (rowid, {columns}) SELECT rowid, {columns} FROM graph_hits "
                   "ORDER BY rowid")
        db.execute("DROP TABLE graph_hits")
        db.execute("ALTER TABLE graph_hits_new RENAME TO graph_hits")
    execute_each(db, HIT_INDEXES)
