"""The whole-window evaluator: every judged event's window rebuilt from the history the store
returned, then each rule's `judge` on it. The engine judged this way before its incremental
window state (chalicelib/rules/windows.py); `hot_path.py` keeps it as the per-event design it
measures against, and checks both give the same hits."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chalicelib.events import StoredEvent, Transaction
from chalicelib.hits import Hit
from chalicelib.rules.base import Finding, GraphRule, Rule
from chalicelib.rules.engine import make_hit, quarantine
from chalicelib.rules.loader import RuleSet

_AFTER_ALL = 1 << 62  # larger than any seq: (ts, _AFTER_ALL) sorts after every event at ts


def evaluate(ruleset: RuleSet, judged: Sequence[StoredEvent],
             history: Mapping[str, Iterable[StoredEvent]], *, errors: Counter[str] | None = None,
             observed_since: int | None = None) -> list[Hit]:
    """Every hit of `ruleset` on the `judged` events, ordered by arrival then rule order.
    `observed_since`: the store's observation start, which rules that `needs_full_history` wait for."""
    by_key_field: dict[str, dict[str, list[StoredEvent]]] = {}
    found: list[tuple[int, int, Hit]] = []
    for rule_index, rule in enumerate(ruleset.rules):
        if isinstance(rule, GraphRule) or rule.id in ruleset.quarantined:
            continue
        rule_hits: list[tuple[int, int, Hit]] = []
        try:  # the per-rule boundary: one rule's exception stops that rule only
            targets = [e for e in judged if e.event.get(rule.key_field) is not None and rule.applies_to(e.event)]
            if rule.needs_full_history and rule.window is not None:  # warming up until observed
                targets = [e for e in targets if observed_since is not None
                           and observed_since <= e.ts_ms - rule.window.ms]
            if not targets:
                continue
            findings: Iterable[tuple[StoredEvent, Finding | None]]
            if rule.window is None:
                findings = ((e, rule.judge(e.event, (e.event,))) for e in targets)
            else:
                if rule.key_field not in by_key_field:
                    by_key_field[rule.key_field] = _group(rule.key_field, history.get(rule.key_field, ()), judged)
                findings = _judge_windowed(rule, targets, by_key_field[rule.key_field])
            for stored, finding in findings:
                if finding is not None:
                    rule_hits.append((stored.seq, rule_index, make_hit(rule, stored.event, finding, ruleset.version)))
        except Exception as exc:
            quarantine(ruleset, rule, exc, errors)
            continue
        found += rule_hits
    found.sort(key=lambda item: (item[0], item[1]))
    return [hit for _, _, hit in found]


def _group(key_field: str, history: Iterable[StoredEvent],
           judged: Sequence[StoredEvent]) -> dict[str, list[StoredEvent]]:
    """History (plus the judged events, in case the store did not return them) by key, in seq order."""
    unique: dict[int, StoredEvent] = {}
    for stored in (*history, *judged):
        unique.setdefault(stored.seq, stored)
    groups: dict[str, list[StoredEvent]] = defaultdict(list)
    for seq in sorted(unique):
        stored = unique[seq]
        key = stored.event.get(key_field)
        if key is not None:
            groups[str(key)].append(stored)
    return groups


def _judge_windowed(rule: Rule[Any], targets: Sequence[StoredEvent],
                    groups: Mapping[str, list[StoredEvent]]) -> Iterable[tuple[StoredEvent, Finding | None]]:
    assert rule.window is not None
    window_ms = rule.window.ms
    target_seqs: dict[str, set[int]] = defaultdict(set)
    for t in targets:
        target_seqs[str(t.event.get(rule.key_field))].add(t.seq)
    for key, seqs in target_seqs.items():
        last = max(seqs)
        order: list[tuple[int, int]] = []  # (ts_ms, seq) of visible, matching events, sorted
        events: list[Transaction] = []  # parallel to `order`
        for stored in groups.get(key, ()):
            if stored.seq > last:
                break
            if not rule.applies_to(stored.event):
                continue
            position = bisect.bisect_right(order, (stored.ts_ms, stored.seq))
            order.insert(position, (stored.ts_ms, stored.seq))
            events.insert(position, stored.event)
            if stored.seq in seqs:
                lo = bisect.bisect_right(order, (stored.ts_ms - window_ms, _AFTER_ALL))
                hi = bisect.bisect_right(order, (stored.ts_ms, _AFTER_ALL))
                yield stored, rule.judge(stored.event, events[lo:hi])
