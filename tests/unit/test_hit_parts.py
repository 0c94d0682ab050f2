"""A rule's hits are built from `HitParts` worked out once per rule and batch: each must be the
hit the rule's own methods give when asked per hit (the reference below is the per-hit build)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from chalicelib.entities import entity_field_or_account, iso_ms
from chalicelib.events import Transaction
from chalicelib.hits import EdgeEnd, Hit, HitEdge, hit_id
from chalicelib.rules import load_rules_text
from chalicelib.rules.base import Finding, Rule
from chalicelib.rules.engine import HitParts, make_hit

RULES = """
version: 1
rules:
  - {id: plain, kind: velocity, key: account_id, window: 10m, threshold: 1}
  - {id: by-ip, kind: fan_out, key: ip, distinct: account_id, window: 10m, threshold: 1, mode: shadow}
  - {id: by-currency, kind: velocity, key: currency, window: 1h, threshold: 1, severity: high}
  - id: edged
    kind: velocity
    key: account_id
    window: 10m
    threshold: 1
    edge: {from: device_id, to: email, label: SAME_PERSON}
  - {id: to-card, kind: velocity, key: account_id, window: 10m, threshold: 1, edge: {to: card_id}}
"""


def per_hit(rule: Rule[Any], event: Transaction, finding: Finding, version: str) -> Hit:
    """The hit as built before `HitParts`: every rule-level part asked of the rule for each hit."""
    src, dst = (entity_field_or_account(end) for end in rule.edge_ends())
    src_value, dst_value = event.get(src), event.get(dst)
    source = EdgeEnd(src, str(src_value)) if src_value is not None else EdgeEnd("account_id", event.account_id)
    target = EdgeEnd(dst, str(dst_value)) if dst_value is not None else source
    if finding.edge_to is not None and rule.config.edge.to is None:
        target = EdgeEnd(*finding.edge_to)
    return Hit(hit_id(rule.id, event.event_id), rule.id, rule.kind, rule.config.mode, rule.config.severity,
               event.event_id, iso_ms(event.ts), event.account_id, rule.key_field, str(event.get(rule.key_field)),
               finding.value, finding.threshold, version, HitEdge(rule.edge_label(), source, target),
               dict(finding.evidence))


EVENTS = [
    Transaction.model_validate({"event_id": "e1", "account_id": "a1", "amount": "12.50", "currency": "EUR",
                                "ip": "10.0.0.1", "device_id": "d1", "email": "a1@x", "card_id": "c1",
                                "ts": "2026-11-01T10:00:00.123Z"}),
    Transaction.model_validate({"event_id": "e2", "account_id": "a2", "amount": "3", "ts": "2026-11-01T10:00:01Z"}),
]
FINDINGS = [Finding(3, 1, {"count": 3}), Finding(2.5, 1, {}, edge_to=("email", "ring@x"))]


@pytest.mark.parametrize("finding", FINDINGS, ids=["no-edge-to", "edge-to"])
@pytest.mark.parametrize("event", EVENTS, ids=["all-fields", "few-fields"])
def test_a_hit_from_its_rules_parts_is_the_hit_built_per_hit(event: Transaction, finding: Finding) -> None:
    ruleset = load_rules_text(RULES)
    for rule in ruleset.rules:
        parts = HitParts.of(rule)
        assert make_hit(rule, event, finding, ruleset.version, parts) == per_hit(rule, event, finding,
                                                                                ruleset.version), rule.id
        assert make_hit(rule, event, finding, ruleset.version) == make_hit(rule, event, finding, ruleset.version,
                                                                           parts)


def test_parts_follow_a_plugin_kinds_own_edge_methods() -> None:
    ruleset = load_rules_text(RULES)
    rule = ruleset.rules[0]

    class Relabelled(type(rule)):  # type: ignore[misc]
        def edge_ends(self) -> tuple[str, str]:
            return "ip", "device_id"

        def edge_label(self) -> str:
            return "OWN_LABEL"

    custom = Relabelled(rule.config, rule.context)
    hit = make_hit(custom, EVENTS[0], FINDINGS[0], "v", HitParts.of(custom))
    assert hit == per_hit(custom, EVENTS[0], FINDINGS[0], "v")
    assert (hit.edge.label, hit.edge.from_, hit.edge.to) == ("OWN_LABEL", EdgeEnd("ip", "10.0.0.1"),
                                                             EdgeEnd("device_id", "d1"))
    assert Decimal(str(hit.value)) == 3
