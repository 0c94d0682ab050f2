"""`velocity`: more than `threshold` events of one key within the window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from chalicelib.events import Transaction, WindowRow
from chalicelib.rules import limits
from chalicelib.rules.base import Finding, Rule, WindowAggregate, WindowedConfig, rows_evidence, window_evidence
from chalicelib.rules.describe import Aggregate, register_aggregate
from chalicelib.rules.registry import register_rule_kind


class VelocityConfig(WindowedConfig):
    kind: Literal["velocity"] = "velocity"
    threshold: int = Field(ge=0, le=limits.MAX_COUNT)


@register_rule_kind
class VelocityRule(Rule[VelocityConfig]):
    config_model = VelocityConfig
    default_edge_to = "merchant_id"

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        count = len(window)
        if count <= self.config.threshold:
            return None
        return Finding(count, self.config.threshold, window_evidence(event, window, self.config.window))

    def judge_rows(self, event: Transaction, window: Sequence[WindowRow],
                   positions: Mapping[str, int]) -> Finding | None:
        count = len(window)
        if count <= self.config.threshold:
            return None
        return Finding(count, self.config.threshold, rows_evidence(event, window, self.config.window))

    def fields_read(self) -> frozenset[str]:
        return frozenset()

    def window_aggregate(self, positions: Mapping[str, int]) -> WindowAggregate:
        return _Count(self.config.threshold)


class _Count(WindowAggregate):
    __slots__ = ("count", "threshold")

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.count = 0

    def add(self, row: tuple[Any, ...]) -> None:
        self.count += 1

    def remove(self, row: tuple[Any, ...]) -> None:
        self.count -= 1

    def may_fire(self, row: tuple[Any, ...], window_start_ms: int) -> bool:
        return self.count > self.threshold


@register_aggregate("velocity")
def describe_velocity(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    return Aggregate(len(window), rule.config.threshold, "count of events in the window, event included")
