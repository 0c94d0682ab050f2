"""`habit_burst`: several payments within `burst` that each stand out against the key's habit.

The window splits in two: the *habit* - events with `event.ts - window < ts <= event.ts - burst`
- and the *burst* - events with `event.ts - burst < ts <= event.ts` (the event included). The rule
judges only when the habit holds at least `min_history` numeric values, and fires when more than
`threshold` burst events have `field > factor x mean(habit)` and the event itself is one of them.
One large purchase against a habit is a one-off; two or three within the hour is a burst.
Comparisons are exact in Decimal by cross-multiplying.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal, Inexact, localcontext
from typing import Any, Literal

from pydantic import Field, field_validator

from chalicelib.events import ROW_TS, Transaction, WindowRow
from chalicelib.rules import limits
from chalicelib.rules.base import (
    BurstConfig,
    Finding,
    Rule,
    WindowAggregate,
    check_field_name,
    rows_evidence,
    split_at_burst,
    split_rows_at_burst,
    window_evidence,
)
from chalicelib.rules.describe import Aggregate, register_aggregate
from chalicelib.rules.numbers import EXACT, RunningSum, as_decimal
from chalicelib.rules.registry import register_rule_kind


class HabitBurstConfig(BurstConfig):
    kind: Literal["habit_burst"] = "habit_burst"
    field: str = "amount"
    factor: Decimal = Field(gt=1, le=limits.MAX_FACTOR, allow_inf_nan=False)
    threshold: int = Field(default=1, ge=1, le=limits.MAX_COUNT)
    min_history: int = Field(default=5, ge=1, le=limits.MAX_MIN_HISTORY)

    _check_field = field_validator("field")(check_field_name)


@register_rule_kind
class HabitBurstRule(Rule[HabitBurstConfig]):
    config_model = HabitBurstConfig
    default_edge_to = "merchant_id"

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        cfg = self.config
        return self._burst(event, window, *split_at_burst(event, window, cfg.burst, cfg.field), window_evidence)

    def judge_rows(self, event: Transaction, window: Sequence[WindowRow],
                   positions: Mapping[str, int]) -> Finding | None:
        cfg = self.config
        return self._burst(event, window, *split_rows_at_burst(event, window, cfg.burst, positions[cfg.field]),
                           rows_evidence)

    def fields_read(self) -> frozenset[str]:
        return frozenset({self.config.field})

    def window_aggregate(self, positions: Mapping[str, int]) -> WindowAggregate:
        return _Habit(positions[self.config.field], self.config)

    def _burst(self, event: Transaction, window: Sequence[Any], in_habit: list[bool], values: list[object],
               evidence_of: Callable[[Transaction, Sequence[Any], timedelta], dict[str, Any]]) -> Finding | None:
        """The test on the window's items, given which lie in the habit and each one's value."""
        cfg = self.config
        value = as_decimal(event.get(cfg.field))
        if value is None:
            return None
        habit = [v for is_habit, x in zip(in_habit, values, strict=True) if is_habit
                 if (v := as_decimal(x)) is not None]
        n = len(habit)
        if n < cfg.min_history:
            return None
        with localcontext() as ctx:
            ctx.prec = 80
            total = sum(habit, Decimal(0))
            if value * n <= cfg.factor * total:
                return None
            burst = [item for item, is_habit, x in zip(window, in_habit, values, strict=True) if not is_habit
                     if (v := as_decimal(x)) is not None and v * n > cfg.factor * total]
            if len(burst) <= cfg.threshold:
                return None
            evidence = evidence_of(event, burst, cfg.burst)
            evidence.update(habit_count=n, habit_mean=float(total / n))
            return Finding(len(burst), cfg.threshold, evidence)


@register_aggregate("habit_burst")
def describe_habit_burst(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    cfg = rule.config
    split = event.ts - cfg.burst
    habit = [v for x in window if x.ts <= split if (v := as_decimal(x.get(cfg.field))) is not None]
    n = len(habit)
    if n < cfg.min_history:
        return Aggregate(None, cfg.threshold, f"the habit has {n} values, fewer than min_history {cfg.min_history}")
    with localcontext() as ctx:
        ctx.prec = 80
        total = sum(habit, Decimal(0))
        above = [x for x in window if x.ts > split
                 if (v := as_decimal(x.get(cfg.field))) is not None and v * n > cfg.factor * total]
        value = as_decimal(event.get(cfg.field))
        note = f"burst events with {cfg.field} above factor x habit mean {float(cfg.factor * total / n):g}"
        if value is None or value * n <= cfg.factor * total:
            note += "; the event itself is not above it"
    return Aggregate(len(above), cfg.threshold, note)


#: `judge` works at 80 digits: its habit sum is exact below this total
_JUDGE_EXACT_BELOW = Decimal("1e20")


class _Habit(WindowAggregate):
    """The habit's count and sum, kept as rows age out of the burst into the habit: rows are
    added newest last and leave oldest first, so the habit holds the oldest rows of the window and
    `recent` (rows not yet one burst older than the last judged event) the newest. `may_fire` is
    the test on the event's own value; `judge` then counts the burst."""

    __slots__ = ("burst_ms", "config", "habit_rows", "position", "recent", "sums")

    def __init__(self, position: int, config: HabitBurstConfig) -> None:
        self.position = position
        self.config = config
        self.burst_ms = config.burst.ms
        self.recent: deque[tuple[Any, ...]] = deque()
        self.habit_rows = 0  # rows in the habit, numeric or not
        self.sums = RunningSum()  # of the habit's numeric values

    def add(self, row: tuple[Any, ...]) -> None:
        self.recent.append(row)

    def remove(self, row: tuple[Any, ...]) -> None:
        if self.habit_rows:  # the oldest row is in the habit
            self.habit_rows -= 1
            value = as_decimal(row[self.position])
            if value is not None:
                self.sums.remove(value)
        else:
            self.recent.popleft()

    def may_fire(self, row: tuple[Any, ...], window_start_ms: int) -> bool:
        split = row[ROW_TS] - self.burst_ms
        recent, sums = self.recent, self.sums
        while recent and recent[0][ROW_TS] <= split:
            self.habit_rows += 1
            value = as_decimal(recent.popleft()[self.position])
            if value is not None:
                sums.add(value)
        cfg = self.config
        value = as_decimal(row[self.position])
        if value is None or sums.count < cfg.min_history:
            return False
        if not sums.exact_below(_JUDGE_EXACT_BELOW):
            return True
        try:
            return EXACT.multiply(value, sums.count) > EXACT.multiply(cfg.factor, sums.total)
        except Inexact:
            return True  # judge rounds here: let it decide
