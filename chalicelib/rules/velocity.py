"""`velocity`: more than `threshold` events of one key within the window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from chalicelib.events import Transaction
from chalicelib.rules import limits
from chalicelib.rules.base import Finding, Rule, WindowedConfig, window_evidence
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
