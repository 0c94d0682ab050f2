"""The linked_component kind on hand-built graph views, and its rules-file checks."""

from __future__ import annotations

import pytest

from chalicelib.entities import GraphView, Identifier
from chalicelib.events import Transaction
from chalicelib.rules import RulesFileError
from tests.unit.test_graph_kinds import reach, rules

RULE = """
    - {id: ring, kind: linked_component, min_accounts: 5, min_cohesion: 0.8, min_account_links: 1.0}
    """


def event(account: str) -> Transaction:
    return Transaction(event_id="ev", ts="2026-11-01T12:00:00Z", account_id=account, amount=1)


def cycle(n: int, kinds: tuple[str, ...] = ("Device", "Phone")) -> list[Identifier]:
    return [Identifier(kinds[i % len(kinds)], f"k{i}", tuple(sorted((f"h{i}", f"h{(i + 1) % n}")))) for i in range(n)]


def test_a_hubless_cycle_fires_for_its_members_with_evidence() -> None:
    rule = rules(RULE).rules[0]
    links = cycle(6)
    hops = {"h0": 0, "h1": 1, "h5": 1, "h2": 2, "h4": 2, "h3": 3}
    finding = rule.judge_graph(event("h0"), GraphView({rule.reach_query(): {"h0": reach(hops, *links)}}))
    assert finding is not None
    assert finding.value == pytest.approx(3 * 1.0 + 3 * 0.75)
    assert finding.evidence["cohesion"] == pytest.approx(5.25 / 5)
    assert finding.evidence["component_size"] == 6 and finding.evidence["account_links"] == pytest.approx(1.75)
    assert finding.edge_to == ("device_id", "k0")  # its own strongest link


def test_the_walk_is_closed_and_bounded() -> None:
    query = rules(RULE).rules[0].reach_query()
    assert query.closed and query.max_accounts == 50 and query.max_hops == 3
    assert query.max_accounts_per_identifier == 20


def test_a_chain_of_email_coincidences_is_not_cohesive_enough() -> None:
    rule = rules(RULE).rules[0]
    links = cycle(6, ("Email",))[:-1]  # a chain: 0.5 per link
    hops = {f"h{i}": i for i in range(6)}
    assert rule.judge_graph(event("h0"), GraphView({rule.reach_query(): {"h0": reach(hops, *links)}})) is None


def test_a_small_group_and_a_weakly_attached_bystander_do_not_fire() -> None:
    rule = rules(RULE).rules[0]
    family = tuple(f"f{i}" for i in range(4))
    small = reach({a: int(a != "f0") for a in family}, Identifier("Device", "d", family),
                  Identifier("Phone", "p", family))
    assert rule.judge_graph(event("f0"), GraphView({rule.reach_query(): {"f0": small}})) is None
    # a bystander sharing one e-mail (0.5) with a cohesive ring is not the ring
    members = tuple(f"r{i}" for i in range(6))
    ring = [Identifier("Device", "d", members), Identifier("Phone", "p", members),
            Identifier("Email", "e", ("by", "r0"))]
    hops = {"by": 0, "r0": 1, **{m: 2 for m in members[1:]}}
    view = GraphView({rule.reach_query(): {"by": reach(hops, *ring)}})
    assert rule.judge_graph(event("by"), view) is None
    hops_r1 = {"r1": 0, "by": 2, **{m: 1 for m in members if m != "r1"}}
    assert rule.judge_graph(event("r1"), GraphView({rule.reach_query(): {"r1": reach(hops_r1, *ring)}})) is not None


def test_an_unknown_account_does_not_fire() -> None:
    rule = rules(RULE).rules[0]
    assert rule.judge_graph(event("x"), GraphView({rule.reach_query(): {}})) is None


@pytest.mark.parametrize("bad", ["weights: {merchant_id: 1.0}", "weights: {device_id: -1}", "via: [merchant_id]",
                                 "max_hops: 5", "min_accounts: 1"])
def test_bad_configs_are_refused(bad: str) -> None:
    with pytest.raises(RulesFileError):
        rules(f"- {{id: ring, kind: linked_component, {bad}}}\n")


def test_weights_default_per_field_and_can_be_overridden() -> None:
    rule = rules("- {id: ring, kind: linked_component, weights: {email: 0.1}}\n").rules[0]
    assert rule.config.weights["email"] == 0.1 and rule.config.weights["device_id"] == 1.0
