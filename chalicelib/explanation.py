"""Why a rule did or did not fire on one event: window bounds, contributing events, aggregate,
threshold and verdict. Pure: no I/O.

The verdict is the real pipeline's (the caller passes the hits the pipeline wrote for the event).
The window is rebuilt from the events that arrived before it with the normative semantics
(`event.ts - W < x.ts <= event.ts`, same key, `where` holds, sorted by (ts, arrival)), and the
aggregate is the kind's own `judge` on that window - so a rule that fired shows exactly the
value, threshold and evidence its hit stores. When it did not fire, the kind's *aggregate
describer* (registered at the end of the kind's module, `chalicelib.rules.describe`) says how
far it was from the threshold (plugin kinds register their own with `register_aggregate`).
Graph kinds show the pipeline's verdict and the hit's evidence; their neighbourhood is in
`graph account`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from chalicelib.entities import iso_ms
from chalicelib.events import Transaction, from_epoch_ms
from chalicelib.hits import Hit
from chalicelib.rules import GraphRule, Rule, RuleSet
from chalicelib.rules.describe import Aggregate, describer_of, register_aggregate
from chalicelib.rules.numbers import plain

#: Contributing event ids listed, at most (the count is always exact).
CONTRIBUTING_CAP = 50


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
                  hits: Mapping[str, Hit], *, observed_since: int | None = None) -> list[RuleExplanation]:
    """Every enabled rule on `event`. `earlier`: the events that arrived before it (first delivery
    of each id); `hits`: the pipeline's hits on the event by rule id; `observed_since`: the store's
    observation start in ms (default: the time of the first event of `earlier`, else the event's),
    which rules that `needs_full_history` wait for."""
    if observed_since is None:
        observed_since = (earlier[0] if earlier else event).ts_ms
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
        warming = _warming_up(rule, event, observed_since)
        if warming and hit is None:
            out.append(RuleExplanation(
                **base, **bounds, verdict="no hit", reason=warming, key_field=rule.key_field, key_value=str(key),
                threshold=_jsonable(getattr(rule.config, "threshold", None)), contributing_count=len(window),
                contributing=[x.event_id for x in window[-CONTRIBUTING_CAP:]]))
            continue
        finding = rule.judge(event, window)
        if finding is not None:
            aggregate = Aggregate(finding.value, finding.threshold)
        else:
            aggregate = describer_of(rule.kind)(rule, event, window)
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


def _warming_up(rule: Rule[Any], event: Transaction, observed_since: int) -> str:
    """Why a rule that `needs_full_history` is not judged yet on `event` ("" when it is)."""
    if not rule.needs_full_history or rule.window is None:
        return ""
    start = event.ts_ms - rule.window.ms
    if observed_since <= start:
        return ""
    return (f"warming up: the store has observed events only since {iso_ms(from_epoch_ms(observed_since))}, "
            f"later than the start of this event's {rule.window} window ({iso_ms(from_epoch_ms(start))}); "
            f"a {rule.kind} rule judges the absence of history, so it is silent until the observation "
            "covers the whole window")


def _text(value: Any) -> str:
    return str(value) if isinstance(value, Decimal) else repr(value)


def _jsonable(value: Any) -> Any:
    return plain(value) if isinstance(value, Decimal) else value


__all__ = ["Aggregate", "AsJudged", "RuleExplanation", "as_judged", "explain_event", "register_aggregate",
           "rule_window"]
