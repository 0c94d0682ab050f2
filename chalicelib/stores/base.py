"""Store and sink interfaces. Every backend implements these; the pipeline sees nothing else."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from chalicelib.events import ALL_ATTRIBUTES, PoisonRecord, StoredEvent, Transaction, WindowRow
from chalicelib.hits import Hit

__all__ = ["ALL_ATTRIBUTES", "DeadLetterSink", "HitSink", "TimeSeriesStore", "WindowRow", "WriteResult"]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a bulk write did.

    `new_ids`: events stored by this write. `pending`: the batch's events that are stored but not
    yet judged - new ones, and earlier deliveries whose judging did not finish - with the seq
    and content the store kept (the first delivery wins).
    """

    new_ids: frozenset[str]
    pending: tuple[StoredEvent, ...]
    #: event id -> why the store refused it (e.g. a timestamp outside Timestream's memory store):
    #: not stored, not judged; the pipeline dead-letters these with the reason
    rejected: dict[str, str] = field(default_factory=dict)


class TimeSeriesStore(ABC):
    """Transactions by arrival, idempotent by `event_id`, readable by key field and time range."""

    #: True when `seq` is one global arrival order assigned at write time, so that a read with
    #: `min_seq` = a high-water mark returns exactly what was stored after that mark. The window
    #: cache of a warm container is used as it is on backends where this holds.
    exact_arrival: ClassVar[bool] = False
    #: Where arrival is not exact: how far (in seq units) below a high-water mark a write that
    #: becomes visible late may still land. The window cache then reads that far below its marks
    #: and keeps rows by event id; None keeps no window state for the backend.
    arrival_margin_seq: ClassVar[int | None] = None

    @abstractmethod
    def prepare(self, key_fields: Iterable[str]) -> None:
        """Make history reads by these key fields efficient (create indexes). Idempotent."""

    @abstractmethod
    def write(self, events: Sequence[Transaction]) -> WriteResult:
        """Store the events in order, one bulk write; ids already stored are left as they are.

        Raises TransientStoreError when the store is busy or unreachable (nothing is written).
        """

    @abstractmethod
    def history(self, key_field: str, keys: Iterable[str], start_ms: int, end_ms: int,
                max_seq: int, *, min_seq: int = 0) -> list[StoredEvent]:
        """Stored events with `key_field` in `keys`, `start_ms < ts_ms <= end_ms` and
        `min_seq < seq <= max_seq`, in seq order. One query, whatever the number of keys."""

    def window_rows(self, key_field: str, keys: Iterable[str], start_ms: int, end_ms: int,
                    max_seq: int, fields: Sequence[str], *, min_seq: int = 0) -> list[WindowRow]:
        """`history(...)` as compact tuples `(ts_ms, seq, event_id, *values)`, one value per name in
        `fields` (event field names, `attributes.NAME`, or `attributes` for the whole mapping), in
        seq order. Values are what `Transaction.get` returns. Backends may override it with a
        cheaper read; this default is built on `history`."""
        return [(s.ts_ms, s.seq, s.event.event_id,
                 *(s.event.attributes if f == ALL_ATTRIBUTES else s.event.get(f) for f in fields))
                for s in self.history(key_field, keys, start_ms, end_ms, max_seq, min_seq=min_seq)]

    @abstractmethod
    def observed_since(self) -> int | None:
        """The store's observation start: the event time (`ts_ms`) of the first event it accepted
        by arrival (the stored event with the lowest `seq`); None while it holds none. A fact of the
        store - the same however the stream was cut into batches, across restarts and replays - that
        changes only if retention deletes the first events. Rules that judge the absence of history
        (`Rule.needs_full_history`) are silent until it covers their window (DESIGN.md)."""

    @abstractmethod
    def mark_judged(self, event_ids: Iterable[str]) -> None:
        """Record that these events' hits are safely written, so redelivery skips them."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections."""


class HitSink(ABC):
    @abstractmethod
    def write(self, hits: Sequence[Hit]) -> list[str]:
        """Write hits idempotently by hit_id; return the ids of those not written before."""


class DeadLetterSink(ABC):
    @abstractmethod
    def write(self, poison: Sequence[PoisonRecord]) -> list[str]:
        """Write poison records with their reason, idempotently by record id; return the new ids."""
