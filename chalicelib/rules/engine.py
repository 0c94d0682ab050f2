"""What the hot path (chalicelib/rules/windows.py) and the graph phase share: the store reads a
batch's windows need, turning a finding into a hit, and the quarantine of a rule that raised;
and the graph rules' evaluation over the batch. Pure: no I/O. The semantics are DESIGN.md's:

    window(e) = [x visible at e | x.key == e.key, where(x), e.ts - W < x.ts <= e.ts]

where "visible at e" is "arrived no later than e" (seq <= e.seq). (The whole-window evaluator
that judged windows rebuilt from history lives on as a benchmark baseline: bench/whole_window.py.)

A rule that raises while judging is quarantined: logged with its id, counted in `errors`, its hits
of the batch dropped, and skipped for the rest of its ruleset version in this process. The other
rules and the batch go on, so a broken rule can never make a batch fail and be redelivered forever.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from chalicelib.entities import GraphView, ReachQuery, entity_field_or_account, iso_ms
from chalicelib.events import StoredEvent, Transaction
from chalicelib.hits import EdgeEnd, Hit, HitEdge, hit_id
from chalicelib.rules.base import Finding, GraphPhase, Rule
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.numbers import plain

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """One store read: events whose `key_field` is in `keys`, `start_ms < ts <= end_ms`,
    `seq <= max_seq`."""

    key_field: str
    keys: frozenset[str]
    start_ms: int
    end_ms: int
    max_seq: int


def history_requests(ruleset: RuleSet, judged: Sequence[StoredEvent]) -> list[HistoryRequest]:
    """The reads a batch needs: one per key field used by a windowed rule."""
    if not judged:
        return []
    longest: dict[str, int] = {}
    for rule in ruleset.micro_rules:
        if rule.window is not None:
            longest[rule.key_field] = max(longest.get(rule.key_field, 0), rule.window.ms)
    max_seq = max(e.seq for e in judged)
    requests = []
    for key_field, window_ms in sorted(longest.items()):
        keyed = [e for e in judged if e.event.get(key_field) is not None]
        if not keyed:
            continue
        requests.append(HistoryRequest(
            key_field,
            frozenset(str(e.event.get(key_field)) for e in keyed),
            min(e.ts_ms for e in keyed) - window_ms,
            max(e.ts_ms for e in keyed),
            max_seq,
        ))
    return requests


def quarantine(ruleset: RuleSet, rule: Rule[Any], exc: Exception, errors: Counter[str] | None) -> None:
    """Take a rule that raised out of `ruleset` for as long as this version is in force here."""
    ruleset.quarantined.add(rule.id)
    if errors is not None:
        errors[rule.id] += 1
    log.error("rule %s (kind %s) raised %s: %s; it is skipped, with its hits of this batch, until the "
              "rules change (version %s)", rule.id, rule.kind, type(exc).__name__, exc, ruleset.version,
              exc_info=exc)


@dataclass(frozen=True, slots=True)
class HitParts:
    """What every hit of one rule shares, worked out once per rule and batch instead of per hit:
    `edge_ends()` and `edge_label()` (a plugin's overrides too) read only the rule's frozen config."""

    rule_id: str
    kind: str
    mode: str
    severity: str
    key_field: str
    src: str
    dst: str
    label: str
    edge_to_configured: bool  # config names the edge's `to`: a finding's `edge_to` does not replace it

    @classmethod
    def of(cls, rule: Rule[Any]) -> HitParts:
        src, dst = (entity_field_or_account(end) for end in rule.edge_ends())
        return cls(rule.id, rule.kind, rule.config.mode, rule.config.severity, rule.key_field, src, dst,
                   rule.edge_label(), rule.config.edge.to is not None)


def make_hit(rule: Rule[Any], event: Transaction, finding: Finding, ruleset_version: str,
             parts: HitParts | None = None) -> Hit:
    """The hit of `rule` on `event`; `parts` is `HitParts.of(rule)` where the caller keeps it."""
    if parts is None:
        parts = HitParts.of(rule)
    src, dst = parts.src, parts.dst
    src_value = event.get(src)
    dst_value = event.get(dst)
    source = EdgeEnd(src, str(src_value)) if src_value is not None else EdgeEnd("account_id", event.account_id)
    target = EdgeEnd(dst, str(dst_value)) if dst_value is not None else source
    if finding.edge_to is not None and not parts.edge_to_configured:
        target = EdgeEnd(*finding.edge_to)
    return Hit(
        hit_id=hit_id(parts.rule_id, event.event_id),
        rule_id=parts.rule_id,
        kind=parts.kind,
        mode=parts.mode,
        severity=parts.severity,
        event_id=event.event_id,
        ts=iso_ms(event.ts),
        account_id=event.account_id,
        key=parts.key_field,
        key_value=str(event.get(parts.key_field)),
        value=_number(finding.value),
        threshold=_number(finding.threshold),
        ruleset_version=ruleset_version,
        edge=HitEdge(parts.label, source, target),
        evidence=dict(finding.evidence),
    )


def _number(value: float | int | Decimal) -> float | int:
    return plain(value) if isinstance(value, Decimal) else value


# --------------------------------------------------------------------------- macro (graph) rules


@dataclass(frozen=True, slots=True)
class GraphRequest:
    """What the graph must answer for a batch: reach per query for the batch's accounts, and
    the hits of the accounts involved since `hits_since` (iso_ms; None: no hits needed)."""

    accounts: frozenset[str]
    reach: tuple[ReachQuery, ...]
    hits_since: str | None


def graph_request(ruleset: RuleSet, judged: Sequence[StoredEvent], *,
                  errors: Counter[str] | None = None) -> GraphRequest | None:
    rules = [r for r in (*ruleset.graph_rules(GraphPhase.GRAPH), *ruleset.graph_rules(GraphPhase.COMPOSITE))
             if r.id not in ruleset.quarantined]
    if not rules or not judged:
        return None
    needs: list[tuple[ReachQuery | None, timedelta | None]] = []
    for rule in rules:
        try:  # a plugin's reach_query is rule code too
            needs.append((rule.reach_query(), rule.hits_lookback))
        except Exception as exc:
            quarantine(ruleset, rule, exc, errors)
    queries = tuple(dict.fromkeys(q for q, _ in needs if q is not None))
    lookbacks = [lb for _, lb in needs if lb is not None]
    earliest = min(e.event.ts for e in judged)
    since = iso_ms(earliest - max(lookbacks)) if lookbacks else None
    return GraphRequest(frozenset(e.event.account_id for e in judged), queries, since)


def evaluate_graph(ruleset: RuleSet, judged: Sequence[StoredEvent], view: GraphView, phase: int,
                   *, errors: Counter[str] | None = None) -> list[Hit]:
    """Hits of the graph rules of one phase, per judged event (in arrival order)."""
    found = []
    rules = ruleset.graph_rules(phase)
    for stored in sorted(judged, key=lambda s: s.seq):
        for rule in rules:
            if rule.id in ruleset.quarantined:
                continue
            try:  # the per-rule boundary: one rule's exception stops that rule only
                if not rule.applies_to(stored.event):
                    continue
                finding = rule.judge_graph(stored.event, view)
                if finding is not None:
                    found.append(make_hit(rule, stored.event, finding, ruleset.version))
            except Exception as exc:
                quarantine(ruleset, rule, exc, errors)
    return [hit for hit in found if hit.rule_id not in ruleset.quarantined]
