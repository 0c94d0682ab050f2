"""The synchronous decision: approve, review or decline one payment before it settles.

A decision is the stream's own batch path on a one-event batch - the same dedup, time-series
write, judging (micro rules over their windows, then graph rules on the graph after this event's
entity writes), graph and hit writes and "judged" mark (`Pipeline.process`) - followed by the
rules file's decision policy (`rules/policy.py`) over the event's hits. So a later Kinesis
delivery of the same `event_id` is a duplicate: nothing is counted or judged twice and the hit ids
are the same. A repost of the same `event_id` gets the answer kept the first time and stores
nothing; an event the stream judged first is answered from its hit edges in the graph.

Bad input is refused before anything is stored: a body over the record limit (413), a body that
is not a valid transaction or has no `event_id` (400, with the dead-letter corpus's reasons and
the field). A store that cannot answer gives 503.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal, TypedDict

import orjson

from chalicelib.entities import iso_ms
from chalicelib.events import PoisonRecord, RawRecord, Transaction, decode_record
from chalicelib.hits import Hit
from chalicelib.pipeline import BatchReport, Pipeline
from chalicelib.rules import GraphRule, RuleSet
from chalicelib.rules.policy import Outcome
from chalicelib.stores import StoreError
from chalicelib.stores.decisions import DecisionLog
from chalicelib.stores.graph_base import HitFilter, hit_of_edge_row

Verdict = Literal["hit", "no_hit", "not_judged"]
#: the most answers GET /api/decisions returns at once
MAX_RECENT = 200


class RuleVerdict(TypedDict):
    rule_id: str
    mode: str
    verdict: Verdict
    value: float | int | None
    threshold: float | int | None


class DecisionAnswer(TypedDict):
    event_id: str
    decision: Outcome
    ruleset_version: str
    hits: list[dict[str, Any]]
    rules: list[RuleVerdict]
    took_ms: float


class DecisionError(Exception):
    """A request the decision route refuses; `status` is the HTTP status."""

    status = 400

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {"error": str(self), "field": self.field}


class InvalidTransaction(DecisionError):
    status = 400


class TooLarge(DecisionError):
    status = 413


class StoreUnavailable(DecisionError):
    status = 503


@dataclass
class DecisionService:
    """Decisions over one pipeline; calls are serialised (the embedded stores keep one connection)."""

    pipeline: Pipeline
    log: DecisionLog
    clock: Callable[[], float] = time.perf_counter

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def decide(self, body: bytes) -> DecisionAnswer:
        started = self.clock()
        event = self._validate(body)
        with self._lock:
            answer = self._decide(event, body, started)
        answer["took_ms"] = self._ms_since(started)
        return answer

    def _ms_since(self, started: float) -> float:
        return round((self.clock() - started) * 1000, 3)

    def recent(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            return recent_decisions(self.log, limit)

    def close(self) -> None:
        with self._lock:
            self.pipeline.close()
            self.log.close()

    # -------------------------------------------------------------------- steps

    def _validate(self, body: bytes) -> Transaction:
        """The transaction in the body, or the reason (the dead-letter reasons) it is refused."""
        limit = self.pipeline.max_record_bytes
        if len(body) > limit:
            raise TooLarge(f"record is {len(body)} bytes, above the {limit}-byte limit", "body")
        decoded = decode_record(_record(body), max_bytes=limit)
        if isinstance(decoded, PoisonRecord):
            raise InvalidTransaction(decoded.reason, _field_of(decoded.reason))
        if "event_id" not in orjson.loads(body):  # decoded: a JSON object
            raise InvalidTransaction("event_id: required: a decision needs the payment's own id", "event_id")
        return decoded

    def _decide(self, event: Transaction, body: bytes, started: float) -> DecisionAnswer:
        kept = self._kept(event.event_id)
        if kept is not None:
            return kept
        try:
            ruleset = self.pipeline.rules.current()
            report = self.pipeline.process([_record(body)])
        except StoreError as exc:
            raise StoreUnavailable(f"a store cannot answer: {exc}", "store") from exc
        if report.failed_from is not None:
            raise StoreUnavailable(f"a store cannot answer: {report.error}", "store")
        if report.poison:  # the time-series store refused it (e.g. outside Timestream's range)
            raise InvalidTransaction("ts: the time-series store refused the event", "ts")
        if report.accepted == 0 and report.rejudged == 0:
            # judged before, by the stream: answer from its hit edges, store nothing
            return answer_for(ruleset, event, self._judged_hits(ruleset, event), graph=self.pipeline.graph is not None)
        hits = [h for h in report.judged_hits if h.event_id == event.event_id]
        answer = answer_for(ruleset, event, hits, report=report, graph=self.pipeline.graph is not None)
        answer["took_ms"] = self._ms_since(started)  # as kept; the reply's includes keeping it
        try:
            self.log.record(event.event_id, dict(answer))
        except StoreError as exc:
            raise StoreUnavailable(f"the decision store cannot answer: {exc}", "store") from exc
        return answer

    def _kept(self, event_id: str) -> DecisionAnswer | None:
        try:
            kept = self.log.get(event_id)
        except StoreError as exc:
            raise StoreUnavailable(f"the decision store cannot answer: {exc}", "store") from exc
        return None if kept is None else DecisionAnswer(**kept)  # type: ignore[typeddict-item]

    def _judged_hits(self, ruleset: RuleSet, event: Transaction) -> list[Hit]:
        graph = self.pipeline.graph
        if graph is None:
            return []
        at = iso_ms(event.ts)
        until = iso_ms(event.ts + timedelta(milliseconds=1))
        try:
            rows = graph.find_hits(HitFilter(account_id=event.account_id, since=at, until=until),
                                   len(ruleset.rules) + 10)
        except StoreError as exc:
            raise StoreUnavailable(f"a store cannot answer: {exc}", "store") from exc
        return [hit_of_edge_row(row) for row in rows if row.get("event_id") == event.event_id]


def answer_for(ruleset: RuleSet, event: Transaction, hits: Sequence[Hit], *, report: BatchReport | None = None,
               graph: bool = True) -> DecisionAnswer:
    """The answer for an event's hits: the policy's decision and a verdict per rule in force."""
    by_rule = {h.rule_id: h for h in hits}
    failed = set(ruleset.quarantined) | (set(report.rule_errors) if report is not None else set())
    verdicts: list[RuleVerdict] = []
    for rule in ruleset.rules:
        hit = by_rule.get(rule.id)
        verdict: Verdict
        if hit is not None:
            verdict = "hit"
        elif rule.id in failed or (isinstance(rule, GraphRule) and not graph) or not rule.applies_to(event) \
                or (not isinstance(rule, GraphRule) and event.get(rule.key_field) is None):
            verdict = "not_judged"
        else:
            verdict = "no_hit"
        threshold = hit.threshold if hit is not None else _number(getattr(rule.config, "threshold", None))
        verdicts.append(RuleVerdict(rule_id=rule.id, mode=rule.config.mode, verdict=verdict,
                                    value=hit.value if hit is not None else None, threshold=threshold))
    version = hits[0].ruleset_version if hits else ruleset.version
    return DecisionAnswer(
        event_id=event.event_id,
        decision=ruleset.policy.decide((h.rule_id, h.mode, h.severity) for h in hits),
        ruleset_version=version, hits=[h.to_dict() for h in hits], rules=verdicts, took_ms=0.0)


def recent_decisions(log: DecisionLog, limit: int) -> list[dict[str, Any]]:
    """The newest kept answers; StoreUnavailable where they cannot be read (the log in AWS)."""
    try:
        return log.recent(max(1, min(limit, MAX_RECENT)))
    except StoreError as exc:
        raise StoreUnavailable(str(exc), "store") from exc


def _record(body: bytes) -> RawRecord:
    # `event_id` is required, so the record id never stands in for it
    return RawRecord("decision", "decision", "decision", body)


def _field_of(reason: str) -> str:
    """The field a decode reason names (`native record invalid: amount: ...`); `body` when the
    reason is about the whole body (not UTF-8, not JSON, not an object, unknown format)."""
    _, sep, rest = reason.partition(" invalid: ")
    name = rest.split(":", 1)[0].strip() if sep else ""
    return name or "body"


def _number(value: Any) -> float | int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value if isinstance(value, int | float) else None


