"""Events the time-series store refuses (e.g. too old for Timestream's memory store) are
dead-lettered with the store's reason; the rest of the batch goes on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from chalicelib.events import Transaction
from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource, load_rules_text
from chalicelib.stores import SQLiteTimeSeriesStore, TransientStoreError, WriteResult
from tests.fakes import MemoryDeadLetterSink, MemoryHitSink, raw_records

RULES = "version: 1\nrules:\n  - {id: v, kind: velocity, window: 1h, threshold: 1}\n"


class RefusingOldEvents(SQLiteTimeSeriesStore):
    """A store that, like Timestream's memory store, refuses events older than a cut-off."""

    def __init__(self, cutoff_ms: int) -> None:
        super().__init__(":memory:")
        self.cutoff_ms = cutoff_ms

    def write(self, events: Sequence[Transaction]) -> WriteResult:
        refused = {e.event_id: "The record timestamp is outside the time range of the memory store."
                   for e in events if e.ts_ms < self.cutoff_ms}
        result = super().write([e for e in events if e.event_id not in refused])
        return WriteResult(result.new_ids, result.pending, refused)


def test_refused_events_are_dead_lettered_and_the_batch_goes_on() -> None:
    events = [Transaction(event_id=f"e{i}", ts=ts, account_id="a", amount=1) for i, ts in
              enumerate([5_000_000, 1_000, 5_000_100, 5_000_200])]
    letters, hits = MemoryDeadLetterSink(), MemoryHitSink()
    pipeline = Pipeline(StaticRulesSource(load_rules_text(RULES)), RefusingOldEvents(cutoff_ms=2_000_000), hits,
                        letters)
    report = pipeline.process(raw_records(events))
    assert (report.accepted, report.poison, report.duplicates, report.failed_from) == (3, 1, 0, None)
    assert list(letters.entries) == ["shardId-000000000000:1"]
    assert "memory store" in str(letters.entries["shardId-000000000000:1"]["reason"])
    assert sorted(h.event_id for h in hits.hits.values()) == ["e2", "e3"]  # e1 is neither judged nor counted


class FailingOnceToMarkJudged(SQLiteTimeSeriesStore):
    """A store that is busy exactly when the first batch's events are to be marked judged."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.failures = 1

    def mark_judged(self, event_ids: Iterable[str]) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientStoreError("sqlite store busy while marking events judged: database is locked")
        super().mark_judged(event_ids)


def test_hits_written_before_marking_fails_are_reported_by_the_delivery_that_wrote_them() -> None:
    """Hits are counted by the report of the delivery that wrote them, so the reports of a failed
    delivery and its redelivery add up to the hits of a run that never failed."""
    events = [Transaction(event_id=f"e{i}", ts=1_000 + i, account_id="a", amount=1) for i in range(4)]
    hits = MemoryHitSink()
    pipeline = Pipeline(StaticRulesSource(load_rules_text(RULES)), FailingOnceToMarkJudged(), hits,
                        MemoryDeadLetterSink())
    failed = pipeline.process(raw_records(events))
    assert failed.failed_from == "0" and failed.hits == {"v": 3}
    again = pipeline.process(raw_records(events))
    assert again.failed_from is None and again.rejudged == 4 and again.hits == {}
    assert len(hits.hits) == 3
