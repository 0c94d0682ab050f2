"""Store and sink interfaces. Every backend implements these; the pipeline sees nothing else."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from chalicelib.events import PoisonRecord, StoredEvent, Transaction
from chalicelib.hits import Hit


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
                max_seq: int) -> list[StoredEvent]:
        """Stored events with `key_field` in `keys`, `start_ms < ts_ms <= end_ms` and
        `seq <= max_seq`, in seq order. One query, whatever the number of keys."""

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
