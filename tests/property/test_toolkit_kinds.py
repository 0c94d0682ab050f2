"""Dogfooding `fraudtools.testing`: every built-in windowed kind (and list_match) through the
toolkit's ready-made properties on the real pipeline. The toolkit's reference is also the
project's one oracle (tests/property/test_engine_vs_oracle.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.rules import load_rules_text
from fraudtools.testing import (
    DEFAULT_POOLS,
    batch_cuts,
    check_agrees_with_reference,
    conditions,
    only,
    reference_of,
    rule_properties,
    streams,
)

RULES = load_rules_text("""
version: 1
lists:
  bad-ips: {values: ["ip-2"]}
rules:
  - {id: velocity, kind: velocity, key: account_id, window: 2m, threshold: 2}
  - id: velocity-where
    kind: velocity
    key: card_id
    window: 1m
    threshold: 1
    where: [{field: amount, op: lt, value: 5}, {field: ip, op: exists, value: true}]
  - {id: fan-out, kind: fan_out, key: ip, distinct: account_id, window: 5m, threshold: 1}
  - {id: sum-over, kind: sum_over, key: account_id, field: amount, window: 3m, threshold: 20000}
  - {id: spike-factor, kind: amount_spike, key: account_id, window: 10m, factor: 3, min_history: 2}
  - {id: spike-z, kind: amount_spike, key: account_id, window: 10m, zscore: 1.5, min_history: 3}
  - {id: first-seen, kind: first_seen, key: account_id, field: device_id, window: 10m, min_history: 1}
  - {id: travel, kind: geo_velocity, key: account_id, window: 30m, threshold: 500}
  - {id: blocked-ip, kind: list_match, field: ip, list: bad-ips}
""", name="toolkit-kinds.yaml")

WINDOWED_KINDS = {"velocity", "fan_out", "sum_over", "amount_spike", "first_seen", "geo_velocity"}
CASES = [(rule.id, name) for rule in RULES.rules for name in rule_properties(RULES, rule.id)]


def test_every_built_in_micro_kind_is_covered_and_has_a_reference() -> None:
    assert {r.kind for r in RULES.rules} == WINDOWED_KINDS | {"list_match"}
    for rule in RULES.rules:
        reference_of(rule.kind)


def test_monotone_kinds_get_the_monotonicity_property() -> None:
    names = {rule_id: set(rule_properties(RULES, rule_id)) for rule_id, _ in CASES}
    assert "monotonicity" in names["velocity"] and "monotonicity" in names["sum-over"]
    assert "monotonicity" not in names["blocked-ip"]


@pytest.mark.parametrize(("rule_id", "prop"), CASES)
def test_toolkit_property_holds(rule_id: str, prop: str) -> None:
    rule_properties(RULES, rule_id)[prop]()


@given(st.data())
def test_reference_where_agrees_with_the_engine_on_any_condition(data: st.DataObject) -> None:
    pools = {**DEFAULT_POOLS, "attributes.channel": ("web", "app", 3, None)}
    condition = data.draw(conditions(pools=pools), label="where")
    ruleset = only(RULES, "velocity", threshold=0, where=[condition])
    stream = data.draw(streams(pools=pools, max_size=20), label="stream")
    check_agrees_with_reference(ruleset, stream, data.draw(batch_cuts(len(stream))))


def test_a_kind_without_a_reference_is_a_clear_error() -> None:
    from fraudtools.testing.reference import _REFERENCES

    judge = _REFERENCES.pop("fan_out")
    try:
        with pytest.raises(LookupError, match=r"no reference judge for rule kind 'fan_out': register one"):
            rule_properties(RULES, "fan-out")
    finally:
        _REFERENCES["fan_out"] = judge
