"""A throw-away embedded pipeline (SQLite time series, gremlite graph, JSON-lines sinks in a
temporary directory) fed with records the way the Kinesis handler is: what `rules test`,
`backtest` and `explain` run events through."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from chalicelib.events import PoisonRecord, RawRecord, Transaction, decode_record, records_from_kinesis_event
from chalicelib.hits import Hit
from chalicelib.lambda_response import MAX_REDELIVERIES
from chalicelib.pipeline import BatchReport, Pipeline
from chalicelib.rules import RuleSet, StaticRulesSource
from chalicelib.stores import (
    JsonLinesDeadLetterSink,
    JsonLinesHitSink,
    SQLiteGraphStore,
    SQLiteTimeSeriesStore,
)
from fraudtools.record_files import FileItem, RefusedLine, StreamRecord, kinesis_event


class ScratchRun:
    """One pipeline on fresh stores in `directory`; every hit it writes is kept in `hits`."""

    def __init__(self, ruleset: RuleSet, directory: Path, *, graph: bool = True) -> None:
        self.directory = directory
        self.pipeline = Pipeline(
            StaticRulesSource(ruleset), SQLiteTimeSeriesStore(":memory:"),
            JsonLinesHitSink(directory / "hits.jsonl"), JsonLinesDeadLetterSink(directory / "dead-letters.jsonl"),
            graph=SQLiteGraphStore(":memory:") if graph else None)
        self.hits: list[Hit] = []
        self.poison: list[str] = []
        self.accepted = 0  # events stored for the first time
        self.duplicates = 0  # events whose id was already stored

    def deliver(self, items: Sequence[FileItem]) -> list[Transaction]:
        """Process one batch (redelivering from a reported failure, as Lambda does); returns the
        batch's events as decoded (poison records and refused lines are kept in `poison` with their
        reason)."""
        records = [item for item in items if isinstance(item, StreamRecord)]
        self.poison += [f"record {item.sequence_number}: {item.reason}"
                        for item in items if isinstance(item, RefusedLine)]
        raw = records_from_kinesis_event(kinesis_event(records))
        decoded: list[Transaction] = []
        for record in raw:
            result = record if isinstance(record, PoisonRecord) else decode_record(record)
            if isinstance(result, PoisonRecord):
                self.poison.append(f"record {result.record.sequence_number}: {result.reason}")
            else:
                decoded.append(result)
        remaining: list[RawRecord | PoisonRecord] = list(raw)
        for attempt in range(MAX_REDELIVERIES + 1):
            report: BatchReport = self.pipeline.process(remaining)
            self.hits.extend(report.new_hits)
            self.accepted += report.accepted
            self.duplicates += report.duplicates if attempt == 0 else 0
            if report.failed_from is None:
                return decoded
            failed_from = int(report.failed_from)
            remaining = [r for r in remaining if int(_sequence(r)) >= failed_from]
        raise RuntimeError(f"batch still failing after {MAX_REDELIVERIES} redeliveries: {report.error}")

    def close(self) -> None:
        self.pipeline.close()


def _sequence(record: RawRecord | PoisonRecord) -> str:
    return record.record.sequence_number if isinstance(record, PoisonRecord) else record.sequence_number


@contextmanager
def scratch_run(ruleset: RuleSet, *, graph: bool = True) -> Iterator[ScratchRun]:
    directory = Path(tempfile.mkdtemp(prefix="fraud-scratch-"))
    run = ScratchRun(ruleset, directory, graph=graph)
    try:
        yield run
    finally:
        run.close()
        shutil.rmtree(directory, ignore_errors=True)


def stream_records(payloads: Sequence[bytes], *, first_sequence: int = 1) -> list[StreamRecord]:
    """Stream records with consecutive sequence numbers (fixed width, so they sort as text too)."""
    return [StreamRecord(f"{first_sequence + i:021d}", "scratch", data) for i, data in enumerate(payloads)]
