"""A SQLite file's table layout, versioned by `PRAGMA user_version`: a store that changes the
layout of its tables brings an older file up to date when it opens it, in place, inside one
`BEGIN IMMEDIATE` transaction that re-reads the version under the write lock, so that of several
processes opening the same old file at once exactly one upgrades it (the others wait for the lock,
then find the new version) and a failed upgrade leaves the file as it was."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from chalicelib.stores.sqlite import immediate_transaction


def layout_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def upgrade_layout(db: sqlite3.Connection, version: int, upgrade: Callable[[sqlite3.Connection, int], None]) -> bool:
    """Bring the file to layout `version`: `upgrade(db, found)` runs (inside the transaction) when
    the file's version `found` is lower, and the version is set with it. True when this call
    upgraded the file. `db` must be in autocommit mode (no transaction open)."""
    if layout_version(db) >= version:
        return False
    with immediate_transaction(db):
        found = layout_version(db)
        if found >= version:  # another process upgraded it while this one waited for the lock
            return False
        upgrade(db, found)
        db.execute(f"PRAGMA user_version = {int(version)}")
    return True


def execute_each(db: sqlite3.Connection, script: str) -> None:
    """The statements of `script` one by one (`executescript` would commit the open transaction)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)
