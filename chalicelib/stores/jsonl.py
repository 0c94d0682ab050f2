"""JSON-lines sinks for hits and dead letters: the local stand-ins for the graph and SQS.

Idempotent by an id field: the ids already in the file are read once when the sink opens, so a
redelivered batch appends nothing new. A torn last line (a crash mid-write) is skipped on reading.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from chalicelib.events import PoisonRecord
from chalicelib.hits import Hit
from chalicelib.stores.base import DeadLetterSink, HitSink
from chalicelib.stores.exceptions import TransientStoreError

log = logging.getLogger(__name__)


class JsonLinesFile:
    """An append-only JSON-lines file that holds each id at most once."""

    def __init__(self, path: str | Path, id_field: str) -> None:
        self.path = Path(path)
        self.id_field = id_field
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._ids: set[str] = {str(item[id_field]) for item in self.read() if id_field in item}

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        items = []
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("%s:%d is not JSON (torn write?); skipped", self.path, number)
        return items

    def append(self, items: Iterable[dict[str, Any]]) -> list[str]:
        """Append the items whose id is not in the file yet; return their ids."""
        lines: dict[str, str] = {}
        for item in items:
            item_id = str(item[self.id_field])
            if item_id not in self._ids and item_id not in lines:
                lines[item_id] = json.dumps(item, default=str, separators=(",", ":")) + "\n"
        if lines:
            try:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write("".join(lines.values()))
            except OSError as exc:
                raise TransientStoreError(f"cannot append to {self.path}: {exc}") from exc
            self._ids.update(lines)
        return list(lines)


class JsonLinesHitSink(HitSink):
    def __init__(self, path: str | Path) -> None:
        self.file = JsonLinesFile(path, "hit_id")

    def write(self, hits: Sequence[Hit]) -> list[str]:
        return self.file.append(h.to_dict() for h in hits)


class JsonLinesDeadLetterSink(DeadLetterSink):
    def __init__(self, path: str | Path) -> None:
        self.file = JsonLinesFile(path, "record_id")

    def write(self, poison: Sequence[PoisonRecord]) -> list[str]:
        return self.file.append(p.to_dead_letter() for p in poison)
