"""A third-party rule kind, `average_over`: the mean of a numeric field for one key within the
window exceeds `threshold` (e.g. an account whose average ticket over an hour is unusually high).

Load it with `plugins: [average_over_kind]` in rules.yaml (the module must be importable), or
advertise it in your package's metadata under the `chalicelib.rule_kinds` entry-point group:

    [project.entry-points."chalicelib.rule_kinds"]
    average_over = "average_over_kind"
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from pydantic import Field

from chalicelib.events import Transaction
from chalicelib.rules import Finding, Rule, WindowedConfig, register_rule_kind
from chalicelib.rules.base import window_evidence
from chalicelib.rules.numbers import as_decimal


class AverageOverConfig(WindowedConfig):
    kind: Literal["average_over"] = "average_over"
    field: str = "amount"
    threshold: Decimal
    min_count: int = Field(default=1, ge=1)


@register_rule_kind
class AverageOverRule(Rule[AverageOverConfig]):
    config_model = AverageOverConfig

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        values = [v for x in window if (v := as_decimal(x.get(self.config.field))) is not None]
        if len(values) < self.config.min_count:
            return None
        total = sum(values, Decimal(0))
        if total <= self.config.threshold * len(values):  # exact: no rounded mean
            return None
        return Finding(float(total / len(values)), float(self.config.threshold),
                       window_evidence(event, window, self.config.window))
