"""Worked example (docs/TESTING_RULES.md): a plugin kind and a new rule, property-tested.

Run it with `.venv/bin/python -m pytest examples/test_my_rule.py` (it also runs in `make test`).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from chalicelib.rules import load_rules_text
from fraudtools.testing import (
    Monotonicity,
    agrees_with_reference_property,
    batching_and_redelivery_property,
    monotonicity_property,
    number,
    register_reference,
)

RULES = load_rules_text("""
version: 1
plugins: [average_over_kind]        # examples/average_over_kind.py, the plugin kind
rules:
  - {id: avg-ticket-1h, kind: average_over, window: 1h, threshold: 1000, min_count: 2}
  - id: big-spender-10m
    kind: sum_over
    window: 10m
    threshold: 20000
    where: [{field: amount, op: ge, value: 100}]
""", plugins_allowed=["average_over_kind"])  # a plugin runs only where it is allowed


# What `average_over` means, written independently of its implementation: exact, brute force.
@register_reference("average_over", monotonicity=Monotonicity(thresholds=("threshold", "min_count")))
def average_over(config: Any, event: Any, window: Any, context: Any) -> Fraction | None:
    values = [v for x in window if (v := number(x.get(config.field))) is not None]
    if len(values) < config.min_count:
        return None
    mean = sum(values, Fraction(0)) / len(values)
    return mean if mean > number(config.threshold) else None  # type: ignore[operator]


test_agrees_with_reference = agrees_with_reference_property(RULES)
test_batching_and_redelivery = batching_and_redelivery_property(RULES)
test_average_is_monotone = monotonicity_property(RULES, "avg-ticket-1h")
test_big_spender_is_monotone = monotonicity_property(RULES, "big-spender-10m")
