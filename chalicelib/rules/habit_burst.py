"""`habit_burst`: several payments within `burst` that each stand out against the key's habit.

The window splits in two: the *habit* - events with `event.ts - window < ts <= event.ts - burst`
- and the *burst* - events with `event.ts - burst < ts <= event.ts` (the event included). The rule
judges only when the habit holds at least `min_history` numeric values, and fires when more than
`threshold` burst events have `field > factor x mean(habit)` and the event itself is one of them.
One large purchase against a habit is a one-off; two or three within the hour is a burst.
Comparisons are exact in Decimal by cross-multiplying.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from chalicelib.events import Transaction
from chalicelib.rules import limits
from chalicelib.rules.base import Duration, Finding, Rule, WindowedConfig, check_field_name, window_evidence
from chalicelib.rules.describe import Aggregate, register_aggregate
from chalicelib.rules.numbers import as_decimal
from chalicelib.rules.registry import register_rule_kind


class HabitBurstConfig(WindowedConfig):
    kind: Literal["habit_burst"] = "habit_burst"
    field: str = "amount"
    burst: Duration
    factor: Decimal = Field(gt=1, le=limits.MAX_FACTOR, allow_inf_nan=False)
    threshold: int = Field(default=1, ge=1, le=limits.MAX_COUNT)
    min_history: int = Field(default=5, ge=1, le=limits.MAX_MIN_HISTORY)

    _check_field = field_validator("field")(check_field_name)

    @model_validator(mode="after")
    def _burst_inside_window(self) -> HabitBurstConfig:
        if self.burst >= self.window:
            raise ValueError(f"burst ({self.burst}) must be shorter than window ({self.window})")
        return self


@register_rule_kind
class HabitBurstRule(Rule[HabitBurstConfig]):
    config_model = HabitBurstConfig
    default_edge_to = "merchant_id"

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        cfg = self.config
        value = as_decimal(event.get(cfg.field))
        if value is None:
            return None
        split = event.ts - cfg.burst
        habit = [v for x in window if x.ts <= split if (v := as_decimal(x.get(cfg.field))) is not None]
        n = len(habit)
        if n < cfg.min_history:
            return None
        with localcontext() as ctx:
            ctx.prec = 80
            total = sum(habit, Decimal(0))
            if value * n <= cfg.factor * total:
                return None
            burst = [x for x in window if x.ts > split
                     if (v := as_decimal(x.get(cfg.field))) is not None and v * n > cfg.factor * total]
            if len(burst) <= cfg.threshold:
                return None
            evidence = window_evidence(event, burst, cfg.burst)
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
