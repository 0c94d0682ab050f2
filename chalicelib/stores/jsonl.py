"""JSON-lines sinks for hits and dead letters: the local stand-ins for the graph and SQS.

Idempotent by an id field, whatever the number of processes appending to one file: an append
holds an exclusive lock on the file (`fcntl.flock`), reads the lines other writers appended since
this sink last looked (only those: it remembers how far it has read), and appends only ids the
file does not hold yet. A torn last line (a writer killed mid-write) is ended and skipped.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from chalicelib.events import PoisonRecord
from chalicelib.hits import Hit, hit_json
from chalicelib.stores.base import DeadLetterSink, HitSink
from chalicelib.stores.exceptions import TransientStoreError

log = logging.getLogger(__name__)

T = TypeVar("T")


class JsonLinesFile:
    """An append-only JSON-lines file that holds each id at most once, shared by any number of
    writer processes."""

    def __init__(self, path: str | Path, id_field: str) -> None:
        self.path = Path(path)
        self.id_field = id_field
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._ids: set[str] = set()  # ids of the file's first `_read_to` bytes
        self._read_to = 0

    def read(self) -> list[dict[str, Any]]:
        items = []
        for number, line in enumerate(self.snapshot().splitlines(), 1):
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s:%d is not JSON (torn write?); skipped", self.path, number)
        return items

    def snapshot(self) -> bytes:
        """The file's complete lines, read while no writer is appending."""
        try:
            with self.path.open("rb") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
                data = handle.read()
        except FileNotFoundError:
            return b""
        return data[:data.rfind(b"\n") + 1]

    def append(self, items: Iterable[dict[str, Any]]) -> list[str]:
        """Append the items whose id is not in the file yet; return their ids."""
        return self.append_lines(((str(item[self.id_field]), item) for item in items), hit_json)

    def append_lines(self, items: Iterable[tuple[str, T]], line: Callable[[T], str]) -> list[str]:
        """`append` for (id, item) pairs whose line (without the newline) is `line(item)`, made only
        for the ids the file does not hold yet."""
        wanted: dict[str, T] = {}
        for item_id, item in items:
            if item_id not in self._ids:
                wanted.setdefault(item_id, item)
        if not wanted:
            return []
        try:
            with self.path.open("a+b") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes
                torn = self._catch_up(handle)
                new_ids = [item_id for item_id in wanted if item_id not in self._ids]
                if new_ids:
                    text = "".join([line(wanted[item_id]) + "\n" for item_id in new_ids])
                    handle.write((b"\n" if torn else b"") + text.encode())
                    handle.flush()
                    self._read_to = handle.tell()
                    self._ids.update(new_ids)
        except OSError as exc:
            raise TransientStoreError(f"cannot append to {self.path}: {exc}") from exc
        return new_ids

    def _catch_up(self, handle: IO[bytes]) -> bool:
        """Learn the ids other writers appended since the last look (under the lock). True when
        the file ends in a torn line, which the next append must end first."""
        size = os.fstat(handle.fileno()).st_size
        if size < self._read_to:  # truncated or replaced: start over
            self._ids.clear()
            self._read_to = 0
        handle.seek(self._read_to)
        tail = handle.read(size - self._read_to)
        complete = tail.rfind(b"\n") + 1
        for line in tail[:complete].splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn line from a killed writer, ended by a later append
            if isinstance(item, dict) and self.id_field in item:
                self._ids.add(str(item[self.id_field]))
        self._read_to += complete
        return complete < len(tail)


class JsonLinesHitSink(HitSink):
    def __init__(self, path: str | Path) -> None:
        self.file = JsonLinesFile(path, "hit_id")

    def write(self, hits: Sequence[Hit]) -> list[str]:
        return self.file.append_lines(((h.hit_id, h) for h in hits), Hit.json_line)


class JsonLinesDeadLetterSink(DeadLetterSink):
    def __init__(self, path: str | Path) -> None:
        self.file = JsonLinesFile(path, "record_id")

    def write(self, poison: Sequence[PoisonRecord]) -> list[str]:
        return self.file.append(p.to_dead_letter() for p in poison)
