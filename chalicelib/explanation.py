"""Why a rule did or did not fire on one event: window bounds, contributing events, aggregate,
threshold and verdict. Pure: no I/O.

The verdict is the real pipeline's (the caller passes the hits the pipeline wrote for the event).
The window is rebuilt from the events that arrived before it with the normative semantics
(`event.ts - W < x.ts <= event.ts`, same key, `where` holds, sorted by (ts, arrival)), and the
aggregate is the kind's own `judge` on that window - so a rule that fired shows exactly the
value, threshold and evidence its hit stores. When it did not fire, a per-kind *aggregate
describer* says how far it was from the threshold (plugin kinds can register their own).
Graph kinds show the pipeline's verdict and the hit's evidence; their neighbourhood is in
`graph account`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from chalicelib.entities import iso_ms
from chalicelib.events import Transaction
from chalicelib.hits import Hit
from chalicelib.rules import GraphRule, Rule, RuleSet
from chalicelib.rules.geo_velocity import haversine_km
from chalicelib.rules.numbers import as_decimal, plain

#: Contributing event ids listed, at most (the count is always exact).
CONTRIBUTING_CAP = 50


@dataclass(frozen=True)
class Aggregate:
    value: Any
    threshold: Any
    note: str = ""


@dataclass(frozen=True)
class RuleExplanation:
    rule_id: str
    kind: str
    mode: str
    verdict: str  # "fires", "no hit", "not judged"
    reason: str
    key_field: str | None = None
    key_value: str | None = None
    window_start: str | None = None  # exclusive
    window_end: str | None = None  # inclusive
    aggregate: Any = None
    threshold: Any = None
    contributing_count: int | None = None  # None: not a time-window rule
    contributing: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Describer = Callable[[Rule[Any], Transaction, Sequence[Transaction]], Aggregate]
_DESCRIBERS: dict[str, Describer] = {}


def register_aggregate(kind: str) -> Callable[[Describer], Describer]:
    """Decorator: how `explain` computes a kind's aggregate when the rule did not fire."""

    def register(describer: Describer) -> Describer:
        _DESCRIBERS[kind] = describer
        return describer

    return register


@dataclass(frozen=True)
class AsJudged:
    """An event as the engine judges it, given what was delivered before it."""

    event: Transaction  # its first delivery (the history's, when the id came before)
    earlier: list[Transaction]  # the first delivery of every other id that arrived before that
    redelivered: bool  # the event's id was already in the history


def as_judged(history: Sequence[Transaction], event: Transaction) -> AsJudged:
    """The engine's rule for a repeated `event_id` (DESIGN.md, Rule semantics 5): the first delivery
    wins and is never counted twice. `history`: what was delivered before `event`, in order."""
    first: dict[str, Transaction] = {}
    for x in history:
        if x.event_id == event.event_id:
            return AsJudged(x, list(first.values()), True)
        first.setdefault(x.event_id, x)
    return AsJudged(event, list(first.values()), False)


def rule_window(rule: Rule[Any], event: Transaction, earlier: Sequence[Transaction]) -> list[Transaction]:
    """The window the semantics give `event` (judged after `earlier` arrived, in that order); an
    id counts once, as its first delivery."""
    if rule.window is None:
        return [event]
    start, key = event.ts - rule.window, event.get(rule.key_field)
    first: dict[str, Transaction] = {}
    for x in (*earlier, event):
        first.setdefault(x.event_id, x)
    inside = [(i, x) for i, x in enumerate(first.values())
              if x.get(rule.key_field) == key and start < x.ts <= event.ts and rule.applies_to(x)]
    inside.sort(key=lambda item: (item[1].ts, item[0]))
    return [x for _, x in inside]


def explain_event(ruleset: RuleSet, event: Transaction, earlier: Sequence[Transaction],
                  hits: Mapping[str, Hit]) -> list[RuleExplanation]:
    """Every enabled rule on `event`. `earlier`: the events that arrived before it (first delivery
    of each id); `hits`: the pipeline's hits on the event by rule id."""
    out: list[RuleExplanation] = []
    for rule in ruleset.rules:
        hit = hits.get(rule.id)
        base: dict[str, Any] = {"rule_id": rule.id, "kind": rule.kind, "mode": rule.config.mode}
        length = getattr(rule.config, "window", None)
        bounds: dict[str, Any] = (
            {"window_start": iso_ms(event.ts - length), "window_end": iso_ms(event.ts)} if length else {})
        if isinstance(rule, GraphRule):
            reason = "graph rule: judged on the entity graph after the batch's writes"
            out.append(RuleExplanation(
                **base, **bounds, verdict="fires" if hit else "no hit", reason=reason, key_field="account_id",
                key_value=event.account_id, aggregate=hit.value if hit else None,
                threshold=hit.threshold if hit else getattr(rule.config, "threshold", None),
                evidence=dict(hit.evidence) if hit else {}))
            continue
        key = event.get(rule.key_field)
        if key is None:
            out.append(RuleExplanation(**base, verdict="not judged", reason=f"the event has no {rule.key_field}",
                                       key_field=rule.key_field))
            continue
        failing = [c for c in rule.config.where if not c.holds(event)]
        if failing:
            condition = failing[0]
            out.append(RuleExplanation(
                **base, verdict="not judged", key_field=rule.key_field, key_value=str(key),
                reason=f"where fails: {condition.field} {condition.op} {condition.value!r} "
                       f"(the event has {_text(event.get(condition.field))})"))
            continue
        window = rule_window(rule, event, earlier)
        finding = rule.judge(event, window)
        if finding is not None:
            aggregate = Aggregate(finding.value, finding.threshold)
        else:
            aggregate = _DESCRIBERS.get(rule.kind, _undescribed)(rule, event, window)
        verdict, reason = ("fires", "") if hit else ("no hit", aggregate.note)
        if (finding is not None) != (hit is not None):
            reason = (f"MISMATCH: the pipeline {'fired' if hit else 'did not fire'} but the kind's judge on "
                      f"this window {'fires' if finding else 'does not'}; " + reason)
        if hit is not None:
            aggregate = Aggregate(hit.value, hit.threshold, aggregate.note)
        out.append(RuleExplanation(
            **base, **bounds, verdict=verdict, reason=reason, key_field=rule.key_field, key_value=str(key),
            aggregate=_jsonable(aggregate.value), threshold=_jsonable(aggregate.threshold),
            contributing_count=len(window), contributing=[x.event_id for x in window[-CONTRIBUTING_CAP:]],
            evidence=dict(hit.evidence) if hit else {}))
    return out


def _text(value: Any) -> str:
    return str(value) if isinstance(value, Decimal) else repr(value)


def _jsonable(value: Any) -> Any:
    return plain(value) if isinstance(value, Decimal) else value


def _undescribed(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    return Aggregate(None, getattr(rule.config, "threshold", None),
                     f"no aggregate describer for kind {rule.kind!r} (register one with register_aggregate)")


def _others(event: Transaction, window: Sequence[Transaction]) -> list[Transaction]:
    return [x for x in window if x.event_id != event.event_id]


@register_aggregate("velocity")
def _velocity(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    return Aggregate(len(window), rule.config.threshold, "count of events in the window, event included")


@register_aggregate("fan_out")
def _fan_out(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    distinct = {x.get(rule.config.distinct) for x in window} - {None}
    return Aggregate(len(distinct), rule.config.threshold, f"distinct {rule.config.distinct} values in the window")


@register_aggregate("sum_over")
def _sum_over(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    total = sum((v for x in window if (v := as_decimal(x.get(rule.config.field))) is not None), Decimal(0))
    return Aggregate(total, rule.config.threshold, f"sum of {rule.config.field} in the window")


@register_aggregate("amount_spike")
def _amount_spike(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    cfg = rule.config
    value = as_decimal(event.get(cfg.field))
    baseline = [v for x in _others(event, window) if (v := as_decimal(x.get(cfg.field))) is not None]
    if value is None:
        return Aggregate(None, None, f"the event has no numeric {cfg.field}")
    if len(baseline) < cfg.min_history:
        return Aggregate(value, None, f"baseline has {len(baseline)} values, fewer than min_history {cfg.min_history}")
    mean = sum(baseline, Decimal(0)) / len(baseline)
    if cfg.factor is not None:
        return Aggregate(value, float(cfg.factor * mean), f"{cfg.field} against factor x baseline mean")
    spread = sum(((v - mean) ** 2 for v in baseline), Decimal(0)) / len(baseline)
    if spread == 0:
        return Aggregate(None, cfg.zscore, "constant baseline: a z-score is not judged")
    return Aggregate(float((value - mean) / spread.sqrt()), cfg.zscore, "z-score against the baseline")


@register_aggregate("first_seen")
def _first_seen(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    cfg = rule.config
    earlier = _others(event, window)
    if event.get(cfg.field) is None:
        return Aggregate(None, None, f"the event has no {cfg.field}")
    known = any(x.get(cfg.field) == event.get(cfg.field) for x in earlier)
    note = (f"{len(earlier)} earlier events (min_history {cfg.min_history}); "
            f"{cfg.field} {event.get(cfg.field)!r} {'already used' if known else 'new'}")
    return Aggregate(0 if known else 1, 0, note)


@register_aggregate("geo_velocity")
def _geo_velocity(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    located = [x for x in _others(event, window) if x.lat is not None and x.lon is not None]
    if event.lat is None or event.lon is None or not located:
        return Aggregate(None, rule.config.threshold, "no located event before it in the window")
    previous = located[-1]
    assert previous.lat is not None and previous.lon is not None
    distance = haversine_km(previous.lat, previous.lon, event.lat, event.lon)
    hours = max((event.ts - previous.ts).total_seconds(), 1.0) / 3600
    note = f"km/h since {previous.event_id}, {distance:.3f} km (min_distance_km {rule.config.min_distance_km})"
    return Aggregate(round(distance / hours, 3), rule.config.threshold, note)


@register_aggregate("list_match")
def _list_match(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    return Aggregate(0, 0, f"{rule.config.field} {event.get(rule.config.field)!r} is not in list {rule.config.list!r}")


__all__ = ["Aggregate", "AsJudged", "RuleExplanation", "as_judged", "explain_event", "register_aggregate",
           "rule_window"]
