"""In-memory sinks implementing the store interfaces (test doubles, not patches of our code);
the plain ones are the rule-author toolkit's own (fraudtools.testing.harness)."""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.events import RawRecord, Transaction
from chalicelib.hits import Hit
from chalicelib.pipeline import Pipeline
from chalicelib.rules import RuleSet, StaticRulesSource
from chalicelib.stores import HitSink, SQLiteTimeSeriesStore, TransientStoreError
from fraudtools.testing.harness import MemoryDeadLetterSink, MemoryHitSink
from tests.strategies import native_json


class FlakyHitSink(MemoryHitSink):
    """Fails the writes whose number (1-based) is in `fail_on`, as a throttled store would."""

    def __init__(self, fail_on: set[int]) -> None:
        super().__init__()
        self.fail_on = fail_on
        self.calls = 0

    def write(self, hits: Sequence[Hit]) -> list[str]:
        self.calls += 1
        if self.calls in self.fail_on:
            raise TransientStoreError(f"injected failure on write {self.calls}")
        return super().write(hits)


def memory_pipeline(ruleset: RuleSet, hits: HitSink | None = None) -> Pipeline:
    return Pipeline(StaticRulesSource(ruleset), SQLiteTimeSeriesStore(":memory:"),
                    hits or MemoryHitSink(), MemoryDeadLetterSink())


def raw_records(stream: Sequence[Transaction], first_sequence: int = 0) -> list[RawRecord]:
    """One Kinesis record per stream position (positions, not event ids, name records)."""
    return [RawRecord(f"shardId-000000000000:{first_sequence + i}", str(first_sequence + i), "pk", native_json(e))
            for i, e in enumerate(stream)]
