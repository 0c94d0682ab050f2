"""`sum_over`: the sum of a numeric `field` for one key within the window exceeds `threshold`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator

from chalicelib.events import Transaction, WindowRow
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
from chalicelib.rules.describe import Aggregate, register_aggregate
from chalicelib.rules.numbers import SummedField, as_decimal, plain
from chalicelib.rules.registry import register_rule_kind


class SumOverConfig(WindowedConfig):
    kind: Literal["sum_over"] = "sum_over"
    field: str = "amount"
    #: >= 0: a negative threshold would fire on almost every event (a window holds the event).
    threshold: Decimal = Field(ge=0, le=limits.MAX_DECIMAL, allow_inf_nan=False)

    _check_field = field_validator("field")(check_field_name)


@register_rule_kind
class SumOverRule(Rule[SumOverConfig]):
    """Events whose field is null or not a number add nothing to the sum."""

    config_model = SumOverConfig
    default_edge_to = "merchant_id"

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        total = _sum(x.get(self.config.field) for x in window)
        if total <= self.config.threshold:
            return None
        return Finding(plain(total), plain(self.config.threshold),
                       window_evidence(event, window, self.config.window))

    def judge_rows(self, event: Transaction, window: Sequence[WindowRow],
                   positions: Mapping[str, int]) -> Finding | None:
        position = positions[self.config.field]
        total = _sum(row[position] for row in window)
        if total <= self.config.threshold:
            return None
        return Finding(plain(total), plain(self.config.threshold),
                       rows_evidence(event, window, self.config.window))

    def fields_read(self) -> frozenset[str]:
        return frozenset({self.config.field})

    def window_aggregate(self, positions: Mapping[str, int]) -> WindowAggregate:
        return _Sum(positions[self.config.field], self.config.threshold)


def _sum(values: Iterable[object]) -> Decimal:
    """The numeric values summed in order at the default context (others add nothing)."""
    total = Decimal(0)
    for item in values:
        value = as_decimal(item)
        if value is not None:
            total += value
    return total


#: `judge` sums at the default 28 digits: exact while plain values stay below this in total
_JUDGE_EXACT_BELOW = Decimal("1e16")


class _Sum(SummedField):
    __slots__ = ("threshold",)

    def __init__(self, position: int, threshold: Decimal) -> None:
        super().__init__(position)
        self.threshold = threshold

    def may_fire(self, row: tuple[Any, ...], window_start_ms: int) -> bool:
        return not self.sums.exact_below(_JUDGE_EXACT_BELOW) or self.sums.total > self.threshold


@register_aggregate("sum_over")
def describe_sum_over(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    total = sum((v for x in window if (v := as_decimal(x.get(rule.config.field))) is not None), Decimal(0))
    return Aggregate(total, rule.config.threshold, f"sum of {rule.config.field} in the window")
