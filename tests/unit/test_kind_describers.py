"""Each kind owns its behaviour: its config, judge and `explain` describer live in the kind's own
module (`chalicelib/rules/<kind>.py`), not in a shared file that knows every kind."""

from __future__ import annotations

from chalicelib.explanation import explain_event
from chalicelib.rules import GraphRule, load_rules_text
from chalicelib.rules.describe import describer_of
from chalicelib.rules.registry import kinds
from tests.unit.test_kinds import tx


def test_every_built_in_time_window_kind_describes_its_aggregate_in_its_own_module() -> None:
    built_in = {kind: rule_class for kind, (_, rule_class) in kinds().items()
                if rule_class.__module__.startswith("chalicelib.rules.") and not issubclass(rule_class, GraphRule)}
    assert {"velocity", "fan_out", "sum_over", "amount_spike", "first_seen", "geo_velocity", "list_match",
            "habit_burst"} <= set(built_in)
    for kind, rule_class in built_in.items():
        assert describer_of(kind).__module__ == rule_class.__module__, kind


def test_explain_states_how_far_a_habit_burst_was_from_firing() -> None:
    rules = load_rules_text("version: 1\nrules:\n  - {id: b, kind: habit_burst, window: 7d, burst: 1h, factor: 4, "
                            "threshold: 1, min_history: 3}\n")
    earlier = [tx(i, ts_s=i * 86400, amount=50) for i in range(3)]
    one_off = tx(10, ts_s=3 * 86400, amount=201)
    (explanation,) = explain_event(rules, one_off, earlier, {})
    assert (explanation.verdict, explanation.aggregate, explanation.threshold) == ("no hit", 1, 1)
    assert "factor x habit mean 200" in explanation.reason
    small = tx(11, ts_s=3 * 86400 + 60, amount=60)
    (explanation,) = explain_event(rules, small, [*earlier, one_off], {})
    assert explanation.aggregate == 1 and "the event itself is not above it" in explanation.reason
