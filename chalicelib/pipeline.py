"""Process one Kinesis batch: decode, dedup, store, evaluate, write hits, report.

Per batch the stores see: one dead-letter write, one bulk time-series write, at most three history
reads per key field (windows of keys the container does not hold, rows stored since its high-water
marks for keys it holds, and windows of events later than what it holds: see rules/windows.py),
one hit write and one "judged" mark - never a query per event.

Exactly-once effects under at-least-once delivery: the time-series write is idempotent by
event_id, hits by hit_id, dead letters by record id; events are marked judged only after their
hits are written, so a batch that dies half-way is judged again on redelivery, with the same
arrival order and therefore the same hits.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.entities import HitRef
from chalicelib.events import (
    MAX_RECORD_BYTES,
    PoisonRecord,
    RawRecord,
    StoredEvent,
    Transaction,
    decode_record,
    records_from_kinesis_event,
)
from chalicelib.hits import Hit
from chalicelib.inbox import AlertInbox
from chalicelib.lambda_response import BatchResponse
from chalicelib.rules import RuleSet, RulesSource
from chalicelib.rules.engine import evaluate_graph, graph_request
from chalicelib.rules.windows import WindowCache
from chalicelib.stores import (
    DeadLetterSink,
    GraphStore,
    HitSink,
    TimeSeriesStore,
    TransientStoreError,
)

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    records: int = 0
    accepted: int = 0  # stored for the first time by this batch
    duplicates: int = 0  # already stored (redelivery) or repeated within the batch
    rejudged: int = 0  # stored by an earlier delivery that did not finish judging them
    poison: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    shadow_hits: Counter[str] = field(default_factory=Counter)
    ruleset_version: str = ""
    failed_from: str | None = None  # sequence number Lambda should redeliver from
    error: str | None = None
    new_hits: list[Hit] = field(default_factory=list)  # hits written for the first time
    rule_errors: Counter[str] = field(default_factory=Counter)  # rules that raised (and were quarantined)
    judged_hits: list[Hit] = field(default_factory=list)  # every hit of the events judged now, new or not
    alerts_opened: int = 0

    def to_dict(self) -> BatchResponse:
        return {
            "records": self.records,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejudged": self.rejudged,
            "poison": self.poison,
            "hits": dict(self.hits),
            "shadow_hits": dict(self.shadow_hits),
            "ruleset_version": self.ruleset_version,
            "rule_errors": dict(self.rule_errors),
            "error": self.error,
            "batchItemFailures": [{"itemIdentifier": self.failed_from}] if self.failed_from else [],
        }


class Pipeline:
    def __init__(self, rules: RulesSource, timeseries: TimeSeriesStore, hits: HitSink,
                 dead_letters: DeadLetterSink, *, graph: GraphStore | None = None,
                 max_record_bytes: int = MAX_RECORD_BYTES, window_cache_bytes: int = 256 * 2**20,
                 alerts: AlertInbox | None = None) -> None:
        self.rules = rules
        self.timeseries = timeseries
        self.windows = window_cache_for(timeseries, window_cache_bytes)
        self.graph = graph
        self.hits = hits
        self.dead_letters = dead_letters
        self.max_record_bytes = max_record_bytes
        self.alerts = alerts
        self._prepared_version: str | None = None
        self._warned_version: str | None = None
        self._observed_since: int | None = None  # the store's observation start, once known

    def process_kinesis_event(self, event: Mapping[str, Any]) -> BatchResponse:
        """The Lambda entry: a Kinesis event dict in, the report (with `batchItemFailures`) out."""
        return self.process(records_from_kinesis_event(event)).to_dict()

    def process(self, records: Sequence[RawRecord | PoisonRecord]) -> BatchReport:
        ruleset = self.rules.current()
        report = BatchReport(records=len(records), ruleset_version=ruleset.version)
        self._prepare(ruleset)
        decoded, poison = self._decode(records)
        report.poison = len(poison)
        try:
            self._dead_letter(poison)
        except TransientStoreError as exc:
            return self._failed(report, records[0], exc)
        if not decoded:
            return report
        try:
            pending = self._store(decoded, report)
            hits = self._judge(ruleset, pending, report.rule_errors)
            report.judged_hits = hits
            # counted as soon as written: if marking fails, a redelivery finds these hits old
            self._count_new_hits(report, hits, set(self.hits.write(hits)))
            if self.alerts is not None:  # idempotent by hit_id, so before "judged" like the hits
                report.alerts_opened = sum(c.before is None for c in self.alerts.record(hits))
            self.timeseries.mark_judged([p.event.event_id for p in pending])
        except TransientStoreError as exc:
            if self.graph is not None:
                self.graph.rollback()
            return self._failed(report, decoded[0][0], exc)
        if self.alerts is not None:
            self.alerts.publish_due()  # never raises: a notification never fails or holds up a batch
        return report

    # The stages of `process`, in order.

    def _prepare(self, ruleset: RuleSet) -> None:
        """Let the time-series store index the key fields of a rule set it has not seen yet."""
        if self._prepared_version != ruleset.version:
            self.timeseries.prepare({r.key_field for r in ruleset.rules if r.window is not None})
            self._prepared_version = ruleset.version

    def _decode(self, records: Sequence[RawRecord | PoisonRecord]
                ) -> tuple[list[tuple[RawRecord, Transaction]], list[PoisonRecord]]:
        """(record, event) for each record that decodes; a PoisonRecord with the reason for each other."""
        decoded: list[tuple[RawRecord, Transaction]] = []
        poison: list[PoisonRecord] = []
        limit = self.max_record_bytes
        for record in records:
            result = record if isinstance(record, PoisonRecord) else decode_record(record, max_bytes=limit)
            if isinstance(result, PoisonRecord):
                poison.append(result)
            else:
                assert isinstance(record, RawRecord)
                decoded.append((record, result))
        return decoded, poison

    def _dead_letter(self, poison: list[PoisonRecord]) -> None:
        if poison:
            self.dead_letters.write(poison)
            for p in poison:
                log.warning("dead-lettered record %s: %s", p.record.record_id, p.reason)

    def _store(self, decoded: list[tuple[RawRecord, Transaction]], report: BatchReport) -> list[StoredEvent]:
        """Write the events (idempotently); dead-letter what the store refused; return the events
        still to judge (new ones, and earlier deliveries' events that were stored but not judged)."""
        written = self.timeseries.write([tx for _, tx in decoded])
        if written.rejected:
            refused = [PoisonRecord(raw, f"time-series store rejected the event: {written.rejected[tx.event_id]}")
                       for raw, tx in decoded if tx.event_id in written.rejected]
            self.dead_letters.write(refused)
            report.poison += len(refused)
        report.accepted = len(written.new_ids)
        report.duplicates = len(decoded) - report.accepted - len(written.rejected)
        report.rejudged = sum(1 for p in written.pending if p.event.event_id not in written.new_ids)
        return list(written.pending)

    def _judge(self, ruleset: RuleSet, pending: list[StoredEvent], rule_errors: Counter[str]) -> list[Hit]:
        """Micro rules over their windows, then (with a graph) macro and composite rules."""
        hits = self._micro_phase(ruleset, pending, rule_errors)
        if self.graph is not None:
            return self._graph_phase(ruleset, pending, hits, rule_errors)
        if (ruleset.graph_rules(1) or ruleset.graph_rules(2)) and self._warned_version != ruleset.version:
            self._warned_version = ruleset.version  # once per version, not once per batch
            log.warning("no graph store: macro and composite rules of version %s are not evaluated",
                        ruleset.version)
        return hits

    @staticmethod
    def _count_new_hits(report: BatchReport, hits: list[Hit], new_hit_ids: set[str]) -> None:
        report.new_hits = [h for h in hits if h.hit_id in new_hit_ids]
        for hit in report.new_hits:
            (report.shadow_hits if hit.mode == "shadow" else report.hits)[hit.rule_id] += 1

    def _micro_phase(self, ruleset: RuleSet, pending: list[StoredEvent], rule_errors: Counter[str]) -> list[Hit]:
        """Hits of the micro rules: the window cache says what it lacks, the store reads it."""
        reads = self.windows.reads(ruleset, pending)
        rows = {read: self.timeseries.window_rows(read.key_field, read.keys, read.start_ms, read.end_ms,
                                                  read.max_seq, read.fields, min_seq=read.min_seq)
                for read in reads}
        observed = self.observed_since() if ruleset.needs_full_history else None
        try:
            hits = self.windows.evaluate(ruleset, pending, rows, errors=rule_errors, observed_since=observed)
        except Exception:
            self.windows.clear()  # a half-applied batch is not trusted: the next batch reloads
            raise
        if self.windows.max_bytes == 0:
            self.windows.clear()
        return hits

    def observed_since(self) -> int | None:
        """The store's observation start (ms), read after the batch is written: once known it is
        kept for the container - it changes only if retention deletes the store's first events."""
        if self._observed_since is None:
            self._observed_since = self.timeseries.observed_since()
        return self._observed_since

    def _graph_phase(self, ruleset: RuleSet, pending: list[StoredEvent], micro_hits: list[Hit],
                     rule_errors: Counter[str]) -> list[Hit]:
        """Write the batch's entities, judge the macro rules on the graph, write every hit as an
        edge, commit. Returns all hits of the batch in arrival order, then rule order. Anything
        that stops the phase rolls the graph's batch back (it is written again on redelivery)."""
        assert self.graph is not None
        try:
            self.graph.write_entities(p.event for p in pending)
            hits = list(micro_hits)
            request = graph_request(ruleset, pending, errors=rule_errors)
            if request is not None:
                view = self.graph.neighbourhood(request.accounts, request.reach, request.hits_since)
                # an earlier delivery of this batch may have committed its hit edges: judged again,
                # the batch sees only its own hits of this delivery, as on its first delivery
                view = view.without_events({p.event.event_id for p in pending})
                view = view.with_hits(HitRef.of(h) for h in micro_hits)
                phase_one = evaluate_graph(ruleset, pending, view, 1, errors=rule_errors)
                view = view.with_hits(HitRef.of(h) for h in phase_one)
                graph_hits = phase_one + evaluate_graph(ruleset, pending, view, 2, errors=rule_errors)
                if graph_hits:  # the micro hits come in this order already
                    hits += graph_hits
                    seq = {p.event.event_id: p.seq for p in pending}
                    order = {r.id: i for i, r in enumerate(ruleset.rules)}
                    hits.sort(key=lambda h: (seq[h.event_id], order[h.rule_id]))
            self.graph.write_hits(hits)
            self.graph.commit()
        except BaseException:
            self.graph.rollback()
            raise
        return hits

    @staticmethod
    def _failed(report: BatchReport, first_unfinished: RawRecord | PoisonRecord, exc: Exception) -> BatchReport:
        record = first_unfinished.record if isinstance(first_unfinished, PoisonRecord) else first_unfinished
        log.error("batch stopped at record %s (will be redelivered): %s", record.record_id, exc)
        report.failed_from = record.sequence_number
        report.error = str(exc)
        return report

    def close(self) -> None:
        self.timeseries.close()
        if self.graph is not None:
            self.graph.close()
        if self.alerts is not None:
            self.alerts.close()


def window_cache_for(timeseries: TimeSeriesStore, max_bytes: int) -> WindowCache:
    """Warm-container window state as the store's arrival order allows: delta reads above a mark
    where arrival is exact; reads reaching `arrival_margin_seq` below it, rows kept by event id,
    where the store names such a margin; no state where it names none (Timestream)."""
    if timeseries.exact_arrival:
        return WindowCache(max_bytes)
    margin = timeseries.arrival_margin_seq
    if margin is None:
        return WindowCache(0)
    # a key untouched for 30 margins reloads its window rather than read a long delta
    return WindowCache(max_bytes, arrival_margin=margin, delta_span=30 * margin)

