"""Opening a fresh SQLite file while another process opens it too: the WAL switch is retried; and
every SQLite store gets the same page cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from chalicelib.stores import SQLiteGraphStore, SQLiteTimeSeriesStore
from chalicelib.stores.alerts_sqlite import SQLiteAlertStore
from chalicelib.stores.decisions import SQLiteDecisionLog
from chalicelib.stores.sqlite import PAGE_CACHE_KIB, _switch_to_wal


class FlakyConnection:
    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        self.statements: list[str] = []

    def execute(self, sql: str) -> Any:
        self.statements.append(sql)
        if self.failures:
            raise sqlite3.OperationalError(self.failures.pop(0))
        return None


def test_a_locked_wal_switch_is_retried_until_it_succeeds() -> None:
    db = FlakyConnection(["database is locked", "database is locked"])
    sleeps: list[float] = []
    _switch_to_wal(db, sleep=sleeps.append)  # type: ignore[arg-type]
    assert db.statements == ["PRAGMA journal_mode=WAL"] * 3 and len(sleeps) == 2


def test_other_errors_and_a_lock_that_stays_are_raised() -> None:
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _switch_to_wal(FlakyConnection(["disk I/O error"]), sleep=lambda s: None)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _switch_to_wal(FlakyConnection(["database is locked"] * 20), sleep=lambda s: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("store", [SQLiteTimeSeriesStore, SQLiteGraphStore, SQLiteAlertStore, SQLiteDecisionLog])
def test_every_sqlite_store_has_the_shared_page_cache(store: Any, tmp_path: Path) -> None:
    opened = store(tmp_path / "store.sqlite")
    try:
        assert opened._db.execute("PRAGMA cache_size").fetchone()[0] == -PAGE_CACHE_KIB
    finally:
        opened.close()
