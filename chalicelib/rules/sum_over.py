"""`sum_over`: the sum of a numeric `field` for one key within the window exceeds `threshold`."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator

from chalicelib.events import Transaction
from chalicelib.rules import limits
from chalicelib.rules.base import Finding, Rule, WindowedConfig, check_field_name, window_evidence
from chalicelib.rules.numbers import as_decimal, plain
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
        total = Decimal(0)
        for x in window:
            value = as_decimal(x.get(self.config.field))
            if value is not None:
                total += value
        if total <= self.config.threshold:
            return None
        return Finding(plain(total), plain(self.config.threshold),
                       window_evidence(event, window, self.config.window))
