"""Run a stream through the real `Pipeline` (public API only) on a throw-away in-memory store.

The pipeline is the one production uses: the same decoding, dedup, store writes and reads,
evaluation and hit records; only the stores are local (SQLite `:memory:`, hits and dead letters
kept in memory).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.events import PoisonRecord, RawRecord, Transaction
from chalicelib.hits import Hit
from chalicelib.pipeline import BatchReport, Pipeline
from chalicelib.rules import RuleSet, StaticRulesSource
from chalicelib.stores import DeadLetterSink, HitSink, SQLiteTimeSeriesStore
from chalicelib.stores.gremlin_graph import GraphStore


class MemoryHitSink(HitSink):
    """Hits by hit_id; a hit written twice is kept once (as every real sink does)."""

    def __init__(self) -> None:
        self.hits: dict[str, Hit] = {}

    def write(self, hits: Sequence[Hit]) -> list[str]:
        new = [h for h in hits if h.hit_id not in self.hits]
        self.hits.update((h.hit_id, h) for h in new)
        return [h.hit_id for h in new]


class MemoryDeadLetterSink(DeadLetterSink):
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}

    def write(self, poison: Sequence[PoisonRecord]) -> list[str]:
        new = [p for p in poison if p.record.record_id not in self.entries]
        self.entries.update((p.record.record_id, p.to_dead_letter()) for p in new)
        return [p.record.record_id for p in new]


def memory_pipeline(ruleset: RuleSet, *, graph: GraphStore | None = None) -> Pipeline:
    """A pipeline for `ruleset` over SQLite `:memory:` and in-memory sinks (and `graph`, if given)."""
    return Pipeline(StaticRulesSource(ruleset), SQLiteTimeSeriesStore(":memory:"), MemoryHitSink(),
                    MemoryDeadLetterSink(), graph=graph)


def event_json(event: Transaction) -> bytes:
    return json.dumps(event.model_dump(mode="json")).encode()


def records_for(stream: Sequence[Transaction], *, first_sequence: int = 0) -> list[RawRecord]:
    """One Kinesis record per stream position (positions, not event ids, name the records)."""
    return [RawRecord(f"shardId-000000000000:{first_sequence + i}", str(first_sequence + i), "pk", event_json(e))
            for i, e in enumerate(stream)]


def split_at(items: Sequence[Any], cuts: Sequence[int]) -> list[list[Any]]:
    """`items` cut into consecutive non-empty batches at the given positions."""
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(items)), len(items)]
    return [list(items[a:b]) for a, b in itertools.pairwise(bounds) if b > a]


@dataclass
class PipelineRun:
    """What a stream did to a pipeline: the pipeline (to feed more), its hits and batch reports."""

    pipeline: Pipeline
    records: list[RawRecord]
    reports: list[BatchReport] = field(default_factory=list)

    @property
    def hits(self) -> dict[str, Hit]:
        sink = self.pipeline.hits
        assert isinstance(sink, MemoryHitSink)
        return dict(sink.hits)

    def deliver(self, records: Sequence[RawRecord]) -> BatchReport:
        report = self.pipeline.process(list(records))
        assert report.failed_from is None, f"the pipeline failed a batch: {report.error}"
        self.reports.append(report)
        return report

    def close(self) -> None:
        self.pipeline.close()


def run_stream(ruleset: RuleSet, stream: Sequence[Transaction], *, cuts: Sequence[int] = ()) -> PipelineRun:
    """Deliver `stream` (arrival order) in batches cut at `cuts` to a fresh in-memory pipeline."""
    records = records_for(stream)
    run = PipelineRun(memory_pipeline(ruleset), records)
    for batch in split_at(records, cuts):
        run.deliver(batch)
    return run


__all__ = [
    "MemoryDeadLetterSink",
    "MemoryHitSink",
    "PipelineRun",
    "event_json",
    "memory_pipeline",
    "records_for",
    "run_stream",
    "split_at",
]
