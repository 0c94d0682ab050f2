"""Linkage scoring: rare links weigh more than crowded ones, and cohesion tells a tree of single
coincidences from a group linked over and over."""

from __future__ import annotations

import pytest

from chalicelib.entities import Identifier
from chalicelib.linkage import identifier_weight, score_component

WEIGHTS = {"email": 0.5, "phone": 0.75, "device_id": 1.0, "card_id": 1.0, "ip": 0.25}


def chain(n: int, label: str = "Email") -> list[Identifier]:
    return [Identifier(label, f"k{i}", (f"a{i}", f"a{i + 1}")) for i in range(n - 1)]


def test_an_identifier_weighs_fully_up_to_a_crowd_then_like_one_over_n_minus_one() -> None:
    assert identifier_weight("Device", 2, WEIGHTS, crowd=10) == 1.0
    assert identifier_weight("Device", 11, WEIGHTS, crowd=10) == 1.0
    assert identifier_weight("Device", 21, WEIGHTS, crowd=10) == pytest.approx(0.5)
    assert identifier_weight("IP", 41, WEIGHTS, crowd=10) == pytest.approx(0.25 * 10 / 40)
    assert identifier_weight("Merchant", 2, WEIGHTS) == 0.0  # not a linking kind


def test_a_chain_of_single_links_has_the_cohesion_of_its_kind() -> None:
    score = score_component([f"a{i}" for i in range(16)], chain(16))
    assert score.evidence == pytest.approx(15 * 0.5) and score.cohesion == pytest.approx(0.5)


def test_a_group_sharing_two_identifiers_is_twice_as_cohesive_and_ranks_above_a_longer_chain() -> None:
    members = tuple(f"r{i}" for i in range(11))
    ring = score_component(members, [Identifier("Email", "shared", members), Identifier("Phone", "1000", members)])
    assert ring.cohesion == pytest.approx(1.25)  # (0.5 + 0.75) x 10 links / 10
    longer = score_component([f"a{i}" for i in range(16)], chain(16))
    assert ring.rank > longer.rank


def test_only_identifiers_with_two_members_inside_count() -> None:
    outside = Identifier("Device", "d", ("a", "zz"))  # links a to someone outside the component
    inside = Identifier("Device", "e", ("a", "b", "zz"))
    score = score_component(["a", "b"], [outside, inside])
    assert [link.identifier.key for link in score.links] == ["e"]
    assert score.links[0].members == 2 and score.evidence == pytest.approx(1.0)
    assert score.account_links("a") == pytest.approx(1.0) and score.account_links("zz") == 0.0


def test_an_office_on_one_ip_is_barely_cohesive() -> None:
    staff = tuple(f"s{i}" for i in range(40))
    score = score_component(staff, [Identifier("IP", "192.0.2.1", staff)])
    assert score.cohesion == pytest.approx(0.25 * 10 / 39)


def test_a_single_account_has_no_cohesion() -> None:
    assert score_component(["a"], []).cohesion == 0.0
