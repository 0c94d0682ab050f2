"""`fan_out`: more than `threshold` distinct values of `distinct` for one key within the window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, field_validator

from chalicelib.events import Transaction
from chalicelib.rules import limits
from chalicelib.rules.base import (
    EVIDENCE_IDS_CAP,
    Finding,
    Rule,
    WindowedConfig,
    check_field_name,
    window_evidence,
)
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
