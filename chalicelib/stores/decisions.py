"""Where answered decisions are kept: the answer a repost of the same `event_id` gets back, and
the recent decisions the page shows. Idempotent by event id: the first answer wins.

Embedded: one SQLite file beside the other stores. In AWS (hits go to the log) decisions go to
the log too; a repost is then answered from the hit edges in the graph (chalicelib/decisions.py)
and the page has no list of recent decisions.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from chalicelib.stores.exceptions import StoreError
from chalicelib.stores.sqlite import open_sqlite, sqlite_errors, translate_sqlite_error

decision_log = logging.getLogger("chalicelib.decisions")

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    answer TEXT NOT NULL
);
"""


class DecisionLog(ABC):
    """Answered decisions by event id."""

    #: False where answers cannot be read back (the log): reposts are answered from the graph
    readable: bool = True

    @abstractmethod
    def record(self, event_id: str, answer: dict[str, Any]) -> bool:
        """Keep the answer unless one is kept for this event already; True if it was new.
        Raises StoreError (TransientStoreError when busy) and then keeps nothing."""

    @abstractmethod
    def get(self, event_id: str) -> dict[str, Any] | None:
        """The answer kept for this event, or None."""

    @abstractmethod
    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest answers first, at most `limit`."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections."""


class SQLiteDecisionLog(DecisionLog):
    def __init__(self, path: str | Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._db = open_sqlite(path, SCHEMA, busy_timeout_s, translate=_translate)

    def record(self, event_id: str, answer: dict[str, Any]) -> bool:
        with sqlite_errors(_translate, "keeping a decision"):
            cursor = self._db.execute("INSERT OR IGNORE INTO decisions (event_id, answer) VALUES (?, ?)",
                                      (event_id, json.dumps(answer, default=str)))
            return cursor.rowcount == 1

    def get(self, event_id: str) -> dict[str, Any] | None:
        with sqlite_errors(_translate, "reading a decision"):
            row = self._db.execute("SELECT answer FROM decisions WHERE event_id = ?", (event_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def recent(self, limit: int) -> list[dict[str, Any]]:
        with sqlite_errors(_translate, "reading decisions"):
            rows = self._db.execute("SELECT answer FROM decisions ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [dict(json.loads(row[0])) for row in rows]

    def count(self) -> int:
        with sqlite_errors(_translate, "counting decisions"):
            return int(self._db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])

    def close(self) -> None:
        self._db.close()


class LogDecisionLog(DecisionLog):
    """Answers as JSON lines in the function's log (CloudWatch); nothing to read back."""

    readable = False

    def record(self, event_id: str, answer: dict[str, Any]) -> bool:
        decision_log.info("%s", json.dumps(answer, default=str))
        return True

    def get(self, event_id: str) -> dict[str, Any] | None:
        return None

    def recent(self, limit: int) -> list[dict[str, Any]]:
        raise StoreError("recent decisions are kept by the embedded store only; in AWS they are in the "
                         "decision function's log")


def _translate(exc: sqlite3.Error, doing: str) -> StoreError:
    return translate_sqlite_error(exc, doing, "decision store")
