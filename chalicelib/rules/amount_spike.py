"""`amount_spike`: the event's `field` stands out against the key's own recent baseline.

The baseline is the rule's window *without the event itself*; the rule judges only when the
baseline holds at least `min_history` numeric values. Exactly one of:

* `factor`: fires when value > factor x mean(baseline);
* `zscore`: fires when (value - mean) / stddev > zscore (population stddev; a constant baseline,
  stddev 0, is not judged - use `factor` for that).

Comparisons are done exactly in Decimal by cross-multiplying, never through a rounded mean.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, Inexact, localcontext
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from chalicelib.events import ROW_EVENT_ID, Transaction, WindowRow
from chalicelib.rules import limits
from chalicelib.rules.base import (
    Finding,
    Rule,
    WindowAggregate,
    WindowedConfig,
    check_field_name,
    rows_evidence,
    window_evidence,
)
from chalicelib.rules.describe import Aggregate, others, register_aggregate
from chalicelib.rules.numbers import EXACT, SummedField, as_decimal, plain
from chalicelib.rules.registry import register_rule_kind


class AmountSpikeConfig(WindowedConfig):
    kind: Literal["amount_spike"] = "amount_spike"
    field: str = "amount"
    #: > 1: with factor <= 1 an event no larger than the usual would count as a spike.
    factor: Decimal | None = Field(default=None, gt=1, le=limits.MAX_FACTOR, allow_inf_nan=False)
    zscore: Decimal | None = Field(default=None, gt=0, le=limits.MAX_FACTOR, allow_inf_nan=False)
    min_history: int = Field(default=5, ge=1, le=limits.MAX_MIN_HISTORY)

    _check_field = field_validator("field")(check_field_name)

    @model_validator(mode="after")
    def _one_test(self) -> AmountSpikeConfig:
        if (self.factor is None) == (self.zscore is None):
            raise ValueError("give exactly one of 'factor' or 'zscore'")
        return self


@register_rule_kind
class AmountSpikeRule(Rule[AmountSpikeConfig]):
    config_model = AmountSpikeConfig
    default_edge_to = "merchant_id"

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        earlier = [x for x in window if x.event_id != event.event_id]
        return self._spike(event, [x.get(self.config.field) for x in earlier],
                           lambda: window_evidence(event, earlier, self.config.window))

    def judge_rows(self, event: Transaction, window: Sequence[WindowRow],
                   positions: Mapping[str, int]) -> Finding | None:
        position, event_id = positions[self.config.field], event.event_id
        earlier = [row for row in window if row[ROW_EVENT_ID] != event_id]
        return self._spike(event, [row[position] for row in earlier],
                           lambda: rows_evidence(event, earlier, self.config.window))

    def _spike(self, event: Transaction, earlier_values: list[object],
               window_evidence: Callable[[], dict[str, Any]]) -> Finding | None:
        """The test on the event's value against the values of the earlier events of its window."""
        cfg = self.config
        value = as_decimal(event.get(cfg.field))
        if value is None:
            return None
        baseline = [v for x in earlier_values if (v := as_decimal(x)) is not None]
        n = len(baseline)
        if n < cfg.min_history:
            return None
        with localcontext() as ctx:
            ctx.prec = 80  # products of sums of amounts stay exact
            total = sum(baseline, Decimal(0))
            mean = total / n
            evidence = window_evidence()
            evidence.update(baseline_count=n, baseline_mean=float(mean))
            if cfg.factor is not None:
                if value * n <= cfg.factor * total:
                    return None
                return Finding(plain(value), float(cfg.factor * mean), evidence)
            assert cfg.zscore is not None
            excess = value * n - total  # n * (value - mean)
            spread = n * sum(v * v for v in baseline) - total * total  # n^2 * variance
            if excess <= 0 or spread <= 0 or excess * excess <= cfg.zscore**2 * spread:
                return None
            stddev = spread.sqrt() / n
            evidence["baseline_stddev"] = float(stddev)
            return Finding(float((value - mean) / stddev), float(cfg.zscore), evidence)

    def fields_read(self) -> frozenset[str]:
        return frozenset({self.config.field})

    def window_aggregate(self, positions: Mapping[str, int]) -> WindowAggregate:
        return _Baseline(positions[self.config.field], self.config)


#: `judge` works at 80 digits: its sums and sums of squares are exact below this total
_JUDGE_EXACT_BELOW = Decimal("1e20")


class _Baseline(SummedField):
    """Count, sum and sum of squares of the window's values; the baseline is them minus the event."""

    __slots__ = ("config",)

    def __init__(self, position: int, config: AmountSpikeConfig) -> None:
        super().__init__(position)
        self.config = config

    def may_fire(self, row: tuple[Any, ...], window_start_ms: int) -> bool:
        cfg, sums = self.config, self.sums
        value = as_decimal(row[self.position])
        if value is None:
            return False
        n = sums.count - 1
        if n < cfg.min_history:
            return False
        if not sums.exact_below(_JUDGE_EXACT_BELOW):
            return True
        try:
            total = EXACT.subtract(sums.total, value)
            if cfg.factor is not None:
                return EXACT.multiply(value, n) > EXACT.multiply(cfg.factor, total)
            assert cfg.zscore is not None
            squares = EXACT.subtract(sums.squares, EXACT.multiply(value, value))
            excess = EXACT.subtract(EXACT.multiply(value, n), total)
            spread = EXACT.subtract(EXACT.multiply(n, squares), EXACT.multiply(total, total))
            if excess <= 0 or spread <= 0:
                return False
            return EXACT.multiply(excess, excess) > EXACT.multiply(EXACT.multiply(cfg.zscore, cfg.zscore), spread)
        except Inexact:
            return True  # judge rounds here: let it decide


@register_aggregate("amount_spike")
def describe_amount_spike(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    cfg = rule.config
    value = as_decimal(event.get(cfg.field))
    baseline = [v for x in others(event, window) if (v := as_decimal(x.get(cfg.field))) is not None]
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
