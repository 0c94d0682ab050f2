"""A brute-force reference evaluator of the rule semantics, written apart from the engine.

For every event, in arrival order, it rebuilds the window from scratch out of everything that
arrived before (no store, no index, no batching) with the *declared* window of the rule's config:

    window(e) = [x arrived no later than e | x.key == e.key, where(x), e.ts - W < x.ts <= e.ts]

sorted by (ts, arrival), and applies the kind's definition with exact rational arithmetic. A
rule whose kind `needs_full_history` is judged only when the observation - which starts at the
time of the first event that arrived - covers its window: `first.ts <= e.ts - W`. Each
kind's definition is a *reference judge* registered here by kind name; a plugin kind registers
its own with `@register_reference("my_kind")`. Graph kinds have no reference (they need a graph).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeVar

from chalicelib.events import Transaction
from chalicelib.rules import GraphRule, RuleSet

#: A judge may return this instead of a value when only the decision should be compared.
FIRES = "fires"


@dataclass(frozen=True)
class ReferenceContext:
    """What a reference judge may need beyond the config: the ruleset's named lists."""

    lists: Mapping[str, frozenset[str]] = field(default_factory=dict)


#: (config, event, window, context) -> the hit's value, FIRES, or None (no hit)
ReferenceJudge = Callable[[Any, Transaction, Sequence[Transaction], ReferenceContext], Any]


@dataclass(frozen=True)
class Monotonicity:
    """Which monotonicity properties hold for a kind (checked by `fraudtools.testing.properties`).

    * `thresholds`: config fields where a larger value never adds hits;
    * `window`: a longer window never removes a hit nor lowers its value;
    * `where`: an extra `where` condition never adds hits.
    * `nonnegative`: the field whose values must be >= 0 for `window` and `where` to hold.
    """

    thresholds: tuple[str, ...] = ()
    window: bool = False
    where: bool = False
    nonnegative: str | None = None


_REFERENCES: dict[str, tuple[ReferenceJudge, Monotonicity]] = {}
#: kinds whose reference says they judge the absence of history: judged only once observed
_FULL_HISTORY: set[str] = set()
J = TypeVar("J", bound=ReferenceJudge)


NOT_MONOTONE = Monotonicity()


def register_reference(kind: str, *, monotonicity: Monotonicity = NOT_MONOTONE,
                       needs_full_history: bool = False) -> Callable[[J], J]:
    """Decorator: the reference judge of `kind` (replaces an earlier one of the same kind).
    `needs_full_history`: the kind judges the absence of history, so the reference judges it only
    once the observation covers the window. Declared here, not read from the engine's
    `Rule.needs_full_history`, so the oracle stays independent of what it checks (they must agree)."""

    def register(judge: J) -> J:
        _REFERENCES[kind] = (judge, monotonicity)
        (_FULL_HISTORY.add if needs_full_history else _FULL_HISTORY.discard)(kind)
        return judge

    return register


def reference_of(kind: str) -> tuple[ReferenceJudge, Monotonicity]:
    try:
        return _REFERENCES[kind]
    except KeyError:
        raise LookupError(
            f"no reference judge for rule kind {kind!r}: register one with "
            f"@fraudtools.testing.register_reference({kind!r})"
        ) from None


def number(value: Any) -> Fraction | None:
    """An exact rational for a numeric value (Decimal, int, float, numeric text); None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return Fraction(repr(value)) if math.isfinite(value) else None
    if isinstance(value, int):
        return Fraction(value)
    try:
        return Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None


def condition_holds(condition: Any, event: Transaction) -> bool:
    """A `where` condition on an event: a null field fails every op except `exists: false`."""
    actual = event.get(condition.field)
    op, wanted = condition.op, condition.value
    if op == "exists":
        return (actual is not None) is bool(wanted)
    if actual is None:
        return False
    if op in ("in", "not_in"):
        inside = any(_same(actual, v) for v in wanted)
        return inside if op == "in" else not inside
    if op == "eq":
        return _same(actual, wanted)
    if op == "ne":
        return not _same(actual, wanted)
    a, b = _numbers(actual, wanted)
    if a is not None and b is not None:
        return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
    if isinstance(actual, str) and isinstance(wanted, str):
        return {"gt": actual > wanted, "ge": actual >= wanted, "lt": actual < wanted, "le": actual <= wanted}[op]
    return False


def _numbers(actual: Any, wanted: Any) -> tuple[Fraction | None, Fraction | None]:
    """Both sides as numbers when the comparison is numeric: text never counts as a number,
    except a numeric text value compared with an event's decimal (e.g. `value: "500"` on amount)."""
    if isinstance(actual, str):
        return None, None
    if isinstance(wanted, str) and not isinstance(actual, Decimal):
        return None, None
    return number(actual), number(wanted)


def _same(actual: Any, wanted: Any) -> bool:
    a, b = _numbers(actual, wanted)
    if a is not None and b is not None:
        return a == b
    return bool(actual == wanted)


def reference_hits(ruleset: RuleSet, stream: Iterable[Transaction]) -> dict[tuple[str, str], Any]:
    """{(rule_id, event_id): value} for every hit the semantics give on `stream` (arrival order).

    A repeated event_id is a redelivery: neither stored again nor judged again (first one wins).
    Graph rules are skipped."""
    context = ReferenceContext(ruleset.lists)
    arrived: list[Transaction] = []
    seen: set[str] = set()
    hits: dict[tuple[str, str], Any] = {}
    for event in stream:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        arrived.append(event)
        for rule in ruleset.rules:
            if isinstance(rule, GraphRule):
                continue
            config = rule.config
            key_field = rule.key_field
            key = event.get(key_field)
            if key is None or not all(condition_holds(c, event) for c in config.where):
                continue
            if not observation_covers(rule.kind, config, event, arrived[0].ts):
                continue  # warming up
            judge, _ = reference_of(rule.kind)
            window = reference_window(config, key_field, event, arrived)
            value = judge(config, event, window, context)
            if value is not None:
                hits[(config.id, event.event_id)] = value
    return hits


def observation_covers(kind: str, config: Any, event: Transaction, observed_since: datetime) -> bool:
    """Whether a rule of `kind` may be judged on `event`: always, unless the kind's reference was
    registered `needs_full_history`; then only when observation (which began at `observed_since`,
    the first arrival's time) began no later than the start of the event's window."""
    length = getattr(config, "window", None)
    if kind not in _FULL_HISTORY or length is None:
        return True
    return observed_since <= event.ts - timedelta(seconds=length.total_seconds())


def reference_window(config: Any, key_field: str, event: Transaction,
                     arrived: Sequence[Transaction]) -> list[Transaction]:
    """The window of `event` among the events `arrived` so far (the event itself included)."""
    length = getattr(config, "window", None)
    if length is None:
        return [event]
    start = event.ts - timedelta(seconds=length.total_seconds())
    key = event.get(key_field)
    inside = [(position, x) for position, x in enumerate(arrived)
              if x.get(key_field) == key and start < x.ts <= event.ts
              and all(condition_holds(c, x) for c in config.where)]
    inside.sort(key=lambda item: (item[1].ts, item[0]))
    return [x for _, x in inside]


def assert_hits_agree(engine_hits: Iterable[Any], expected: Mapping[tuple[str, str], Any]) -> None:
    """The engine fired on exactly the reference's (rule, event) pairs, with the same values."""
    got = {(h.rule_id, h.event_id): h for h in engine_hits}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, (
        f"the pipeline disagrees with the reference: missed (rule, event) {missing}, "
        f"fired where the reference does not {extra}")
    for pair, want in expected.items():
        have = got[pair].value
        if want == FIRES:
            continue
        wanted = number(want)
        if wanted is None:
            assert have == want, (pair, want, have)
        else:
            assert math.isclose(float(wanted), float(have), rel_tol=1e-12), (
                f"the pipeline disagrees with the reference on {pair}: value {have}, reference {float(wanted)}")


# --------------------------------------------------------------------------- built-in kinds


def _others(event: Transaction, window: Sequence[Transaction]) -> list[Transaction]:
    return [x for x in window if x.event_id != event.event_id]


@register_reference("velocity", monotonicity=Monotonicity(("threshold",), window=True, where=True))
def velocity(config: Any, event: Transaction, window: Sequence[Transaction], ctx: ReferenceContext) -> Any:
    return len(window) if len(window) > config.threshold else None


@register_reference("fan_out", monotonicity=Monotonicity(("threshold",), window=True, where=True))
def fan_out(config: Any, event: Transaction, window: Sequence[Transaction], ctx: ReferenceContext) -> Any:
    values = {x.get(config.distinct) for x in window} - {None}
    return len(values) if len(values) > config.threshold else None


@register_reference("sum_over", monotonicity=Monotonicity(("threshold",), window=True, where=True,
                                                          nonnegative="field"))
def sum_over(config: Any, event: Transaction, window: Sequence[Transaction], ctx: ReferenceContext) -> Any:
    total = sum((v for x in window if (v := number(x.get(config.field))) is not None), Fraction(0))
    threshold = number(config.threshold)
    assert threshold is not None
    return total if total > threshold else None


@register_reference("amount_spike", monotonicity=Monotonicity(("factor", "zscore", "min_history")))
def amount_spike(config: Any, event: Transaction, window: Sequence[Transaction], ctx: ReferenceContext) -> Any:
    value = number(event.get(config.field))
    baseline = [v for x in _others(event, window) if (v := number(x.get(config.field))) is not None]
    if value is None or len(baseline) < config.min_history:
        return None
    mean = sum(baseline, Fraction(0)) / len(baseline)
    if config.factor is not None:
        return value if value > number(config.factor) * mean else None  # type: ignore[operator]
    variance = sum(((v - mean) ** 2 for v in baseline), Fraction(0)) / len(baseline)
    z = number(config.zscore)
    assert z is not None
    if variance == 0 or value <= mean:
        return None
    return FIRES if (value - mean) ** 2 > z * z * variance else None


@register_reference("first_seen", monotonicity=Monotonicity(("min_history",)))
def first_seen(config: Any, event: Transaction, window: Sequence[Transaction], ctx: ReferenceContext) -> Any:
    value = event.get(config.field)
    earlier = _others(event, window)
    if value is None or len(earlier) < config.min_history:
        return None
    return None if any(x.get(config.field) == value for x in earlier) else 1


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on a sphere of radius 6371.0088 km (the spec's Earth)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))


@register_reference("geo_velocity", monotonicity=Monotonicity(("threshold", "min_distance_km")))
def geo_velocity(config: Any, event: Transaction, window: Sequence[Transaction], ctx: ReferenceContext) -> Any:
    located = [x for x in _others(event, window) if x.lat is not None and x.lon is not None]
    if event.lat is None or event.lon is None or not located:
        return None
    previous = located[-1]
    assert previous.lat is not None and previous.lon is not None
    distance = great_circle_km(previous.lat, previous.lon, event.lat, event.lon)
    hours = max((event.ts - previous.ts).total_seconds(), 1.0) / 3600
    if distance <= config.min_distance_km or distance / hours <= config.threshold:
        return None
    # with flights, a move a flight makes in time (airport time plus the flight) is possible
    if config.flight_speed_kmh is not None and hours >= config.airport_hours + distance / config.flight_speed_kmh:
        return None
    return round(distance / hours, 3)  # the hit value is the speed rounded to metres per hour


@register_reference("new_key_fan_out", monotonicity=Monotonicity(("threshold",)), needs_full_history=True)
def new_key_fan_out(config: Any, event: Transaction, window: Sequence[Transaction], ctx: ReferenceContext) -> Any:
    """A new key (at most max_history events more than `burst` old) with more than `threshold`
    distinct values of `distinct` in the burst; judged only once observation covers the window
    (`reference_hits` applies that)."""
    history = [x for x in window if x.ts <= event.ts - config.burst]
    if len(history) > config.max_history:
        return None
    values = {x.get(config.distinct) for x in window if x.ts > event.ts - config.burst} - {None}
    return len(values) if len(values) > config.threshold else None


@register_reference("list_match")
def list_match(config: Any, event: Transaction, window: Sequence[Transaction], ctx: ReferenceContext) -> Any:
    value = event.get(config.field)
    members = ctx.lists.get(config.list, frozenset())
    if config.ignore_case:
        return 1 if str(value).lower() in {m.lower() for m in members} else None
    return 1 if str(value) in members else None
