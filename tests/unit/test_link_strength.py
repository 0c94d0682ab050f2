"""Link strength (issue 21): an account's share of an identifier, the strong-link filter and the
rule parameters that set it."""

from __future__ import annotations

import pytest

from chalicelib.entities import Identifier
from chalicelib.linkage import DEFAULT_LINK_SHARES, link_share, link_shares, share_floor, strong
from chalicelib.rules.base import RuleContext
from chalicelib.rules.linked_component import LinkedComponentConfig
from chalicelib.rules.shared_identifier import SharedIdentifierConfig, SharedIdentifierRule

EMAIL = Identifier("Email", "e@x", ("a", "b", "c"), uses=(9, 1, 4), shares=(1.0, 1 / 3, 0.8))


def test_a_share_is_uses_over_the_accounts_uses_of_that_field() -> None:
    assert link_share(3, 9) == pytest.approx(1 / 3) and link_share(5, 5) == 1.0 and link_share(0, 0) == 0.0


def test_strong_keeps_the_members_above_the_share_and_use_floors() -> None:
    assert strong(EMAIL, 0.6, 1).accounts == ("a", "c")
    assert strong(EMAIL, 0.6, 5).accounts == ("a",)
    assert strong(EMAIL, 0.6, 5).uses == (9,) and strong(EMAIL, 0.6, 5).shares == (1.0,)
    assert strong(EMAIL, 0.0, 1) is EMAIL
    unknown = Identifier("Email", "e@x", ("a", "b"))  # no counts known: every link counts
    assert strong(unknown, 0.9, 3) is unknown


def test_a_share_floor_per_field_defaults_for_the_fields_not_named() -> None:
    per_field = (("device_id", 0.2), ("email", 0.7))
    assert share_floor(per_field, "Device") == 0.2 and share_floor(per_field, "Email") == 0.7
    assert share_floor(per_field, "Phone") == DEFAULT_LINK_SHARES["phone"] == 0.6
    assert share_floor(0.5, "Device") == 0.5  # one share for every field
    assert strong(EMAIL, per_field, 1).accounts == ("a", "c")
    assert strong(Identifier("Device", "d", ("a", "b"), (1, 1), (0.25, 0.1)), per_field, 1).accounts == ("a",)


def test_the_rule_parameters_are_validated_and_reach_the_query() -> None:
    config = SharedIdentifierConfig(id="r", threshold=3, min_link_share=0.7, min_link_uses=2)
    rule = SharedIdentifierRule(config, RuleContext())
    query = rule.reach_query()
    assert query.min_link_share == 0.7 and query.min_link_uses == 2
    assert SharedIdentifierConfig(id="r", threshold=3).min_link_share == DEFAULT_LINK_SHARES
    linked = LinkedComponentConfig(id="l", min_link_share={"device_id": 0.3})
    assert linked.min_link_share == {**DEFAULT_LINK_SHARES, "device_id": 0.3}  # the others keep their default
    assert link_shares(None) == DEFAULT_LINK_SHARES and link_shares(0.5) == 0.5
    for bad in ({"min_link_share": 1.5}, {"min_link_share": {"shoe_size": 0.5}}, {"min_link_uses": 0}):
        with pytest.raises(ValueError):
            SharedIdentifierConfig(id="r", threshold=3, **bad)  # type: ignore[arg-type]
