"""A brute-force oracle of DESIGN.md's rule semantics, written independently of the engine.

For every event, in arrival order, it rebuilds the window from scratch out of everything that
arrived so far - no indexes, no batching, no store - and applies each kind's definition with
exact rational arithmetic. The engine must agree with it on any stream.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import timedelta
from fractions import Fraction
from typing import Any

from chalicelib.events import Transaction
from chalicelib.rules.loader import RuleSet


def _num(value: Any) -> Fraction | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return Fraction(repr(value))
    return Fraction(value) if isinstance(value, int) else Fraction(str(value))


def _holds(cond: Any, event: Transaction) -> bool:
    actual = event.get(cond.field)
    if cond.op == "exists":
        return (actual is not None) == cond.value
    if actual is None:
        return False
    if cond.op in ("in", "not_in"):
        inside = any(_same(actual, v) for v in cond.value)
        return inside if cond.op == "in" else not inside
    if cond.op == "eq":
        return _same(actual, cond.value)
    if cond.op == "ne":
        return not _same(actual, cond.value)
    a, b = _num(actual), _num(cond.value)
    if a is None or b is None:
        return False
    return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[cond.op]


def _same(actual: Any, wanted: Any) -> bool:
    a, b = _num(actual) if not isinstance(actual, str) else None, _num(wanted) if not isinstance(wanted, str) else None
    if a is not None and b is not None:
        return a == b
    return bool(actual == wanted)


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    # The spec's distance: great circle on a sphere of radius 6371.0088 km.
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


def oracle_hits(ruleset: RuleSet, stream: Iterable[Transaction]) -> dict[tuple[str, str], Any]:
    """{(rule_id, event_id): value} for every hit the semantics produce on `stream` (arrival order)."""
    arrived: list[Transaction] = []
    ids: set[str] = set()
    hits: dict[tuple[str, str], Any] = {}
    for event in stream:
        if event.event_id in ids:
            continue  # a duplicate is neither counted again nor judged again
        ids.add(event.event_id)
        arrived.append(event)
        for rule in ruleset.rules:
            cfg = rule.config
            key_field = cfg.field if cfg.kind == "list_match" else cfg.key
            key = event.get(key_field)
            if key is None or not all(_holds(c, event) for c in cfg.where):
                continue
            window: list[tuple[int, Transaction]] = []
            if hasattr(cfg, "window"):
                lo = event.ts - timedelta(seconds=cfg.window.total_seconds())
                window = [(i, x) for i, x in enumerate(arrived)
                          if x.get(key_field) == key and all(_holds(c, x) for c in cfg.where)
                          and lo < x.ts <= event.ts]
                window.sort(key=lambda ix: (ix[1].ts, ix[0]))
            value = _judge(cfg, event, [x for _, x in window], ruleset)
            if value is not None:
                hits[(cfg.id, event.event_id)] = value
    return hits


def _judge(cfg: Any, e: Transaction, window: Sequence[Transaction], ruleset: RuleSet) -> Any:
    others = [x for x in window if x.event_id != e.event_id]
    if cfg.kind == "velocity":
        return len(window) if len(window) > cfg.threshold else None
    if cfg.kind == "fan_out":
        distinct = {x.get(cfg.distinct) for x in window} - {None}
        return len(distinct) if len(distinct) > cfg.threshold else None
    if cfg.kind == "sum_over":
        total = sum((v for x in window if (v := _num(x.get(cfg.field))) is not None), Fraction(0))
        return total if total > _num(cfg.threshold) else None
    if cfg.kind == "amount_spike":
        value = _num(e.get(cfg.field))
        base = [v for x in others if (v := _num(x.get(cfg.field))) is not None]
        if value is None or len(base) < cfg.min_history:
            return None
        mean = sum(base, Fraction(0)) / len(base)
        if cfg.factor is not None:
            return value if value > _num(cfg.factor) * mean else None
        variance = sum(((v - mean) ** 2 for v in base), Fraction(0)) / len(base)
        z = _num(cfg.zscore)
        if variance == 0 or value <= mean:
            return None
        return "z" if (value - mean) ** 2 > z * z * variance else None
    if cfg.kind == "first_seen":
        value = e.get(cfg.field)
        if value is None or len(others) < cfg.min_history:
            return None
        return None if any(x.get(cfg.field) == value for x in others) else 1
    if cfg.kind == "geo_velocity":
        located = [x for x in others if x.lat is not None and x.lon is not None]
        if e.lat is None or e.lon is None or not located:
            return None
        prev = located[-1]  # window is in (ts, arrival) order
        distance = _haversine_km(prev.lat, prev.lon, e.lat, e.lon)  # type: ignore[arg-type]
        hours = max((e.ts - prev.ts).total_seconds(), 1.0) / 3600
        if distance <= cfg.min_distance_km or distance / hours <= cfg.threshold:
            return None
        return round(distance / hours, 3)
    if cfg.kind == "list_match":
        value = e.get(cfg.field)
        members = ruleset.lists[cfg.list]
        if cfg.ignore_case:
            return 1 if str(value).lower() in {m.lower() for m in members} else None
        return 1 if str(value) in members else None
    raise AssertionError(f"oracle does not know kind {cfg.kind}")


def assert_agrees(engine_hits: Iterable[Any], expected: dict[tuple[str, str], Any]) -> None:
    """The engine fired on exactly the oracle's (rule, event) pairs, with the same values."""
    got = {(h.rule_id, h.event_id): h for h in engine_hits}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, f"engine missed {missing}, engine invented {extra}"
    for pair, want in expected.items():
        have = got[pair].value
        if want == "z":
            continue  # zscore hits report a rounded z; the decision itself is compared above
        if isinstance(want, Fraction):
            assert math.isclose(float(want), float(have), rel_tol=1e-12), (pair, want, have)
        else:
            assert have == want, (pair, want, have)
