"""`fan_out`: more than `threshold` distinct values of `distinct` for one key within the window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator

from chalicelib.events import Transaction, WindowRow
from chalicelib.rules import limits
from chalicelib.rules.base import (
    EVIDENCE_IDS_CAP,
    Finding,
    Rule,
    ValueCounts,
    WindowAggregate,
    WindowedConfig,
    check_field_name,
    rows_evidence,
    window_evidence,
)
from chalicelib.rules.describe import Aggregate, register_aggregate
from chalicelib.rules.registry import register_rule_kind


class FanOutConfig(WindowedConfig):
    kind: Literal["fan_out"] = "fan_out"
    distinct: str
    threshold: int = Field(ge=0, le=limits.MAX_COUNT)

    _check_distinct = field_validator("distinct")(check_field_name)


@register_rule_kind
class FanOutRule(Rule[FanOutConfig]):
    config_model = FanOutConfig

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        values: dict[object, None] = {}  # insertion-ordered set: evidence lists oldest first
        for x in window:
            value = x.get(self.config.distinct)
            if value is not None:
                values[value] = None
        if len(values) <= self.config.threshold:
            return None
        evidence = window_evidence(event, window, self.config.window)
        evidence["distinct_values"] = [str(v) for v in list(values)[:EVIDENCE_IDS_CAP]]
        return Finding(len(values), self.config.threshold, evidence)

    def judge_rows(self, event: Transaction, window: Sequence[WindowRow],
                   positions: Mapping[str, int]) -> Finding | None:
        position = positions[self.config.distinct]
        values = dict.fromkeys(row[position] for row in window)
        values.pop(None, None)
        if len(values) <= self.config.threshold:
            return None
        evidence = rows_evidence(event, window, self.config.window)
        evidence["distinct_values"] = [str(v) for v in list(values)[:EVIDENCE_IDS_CAP]]
        return Finding(len(values), self.config.threshold, evidence)

    def fields_read(self) -> frozenset[str]:
        return frozenset({self.config.distinct})

    def window_aggregate(self, positions: Mapping[str, int]) -> WindowAggregate:
        return _Distinct(positions[self.config.distinct], self.config.threshold)


class _Distinct(ValueCounts):
    """The window's distinct values: more than `threshold` of them may fire."""

    __slots__ = ("threshold",)

    def __init__(self, position: int, threshold: int) -> None:
        super().__init__(position)
        self.threshold = threshold

    def may_fire(self, row: tuple[Any, ...], window_start_ms: int) -> bool:
        return len(self.counts) > self.threshold


@register_aggregate("fan_out")
def describe_fan_out(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    distinct = {x.get(rule.config.distinct) for x in window} - {None}
    return Aggregate(len(distinct), rule.config.threshold, f"distinct {rule.config.distinct} values in the window")
