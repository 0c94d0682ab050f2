"""Hand-built graph views for the macro kinds, and their rules-file checks."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from chalicelib.entities import GraphView, HitRef, Identifier, Reach
from chalicelib.events import Transaction
from chalicelib.rules import RulesFileError, load_rules_text

EVENT = Transaction(event_id="ev", ts="2026-11-01T12:00:00Z", account_id="a", amount=1, merchant_id="m")


def rules(text: str) -> Any:
    return load_rules_text("version: 1\nrules:\n" + textwrap.indent(textwrap.dedent(text), "  "))


def reach(hops: dict[str, int], *identifiers: Identifier) -> Reach:
    return Reach(hops=hops, identifiers={(i.label, i.key): i for i in identifiers})


def hit(hit_id: str, account: str, ts: str, rule: str = "velocity-1m", kind: str = "velocity",
        mode: str = "enforce", event: str = "x") -> HitRef:
    return HitRef(hit_id, rule, kind, account, ts, mode, event)


def test_shared_identifier_counts_the_component_including_the_account() -> None:
    ruleset = rules("""
        - {id: ring, kind: shared_identifier, via: [email, phone], threshold: 3}
        """)
    rule = ruleset.rules[0]
    email = Identifier("Email", "shared@x", ("a", "b", "c"))
    phone = Identifier("Phone", "555", ("a", "d"))
    three = GraphView({rule.reach_query(): {"a": reach({"a": 0, "b": 1, "c": 1}, email)}})
    assert rule.judge_graph(EVENT, three) is None  # 3 is not > 3
    four = GraphView({rule.reach_query(): {"a": reach({"a": 0, "b": 1, "c": 1, "d": 1}, email, phone)}})
    finding = rule.judge_graph(EVENT, four)
    assert finding is not None and finding.value == 4
    assert finding.edge_to == ("email", "shared@x")  # the most shared identifier
    assert finding.evidence["identifiers"][0] == {"label": "Email", "key": "shared@x", "accounts": 3}


def test_near_flagged_counts_other_recently_flagged_accounts_within_hops() -> None:
    ruleset = rules("""
        - {id: velocity-1m, kind: velocity, window: 1m, threshold: 5}
        - {id: near, kind: near_flagged, hops: 2, window: 1h}
        """)
    rule = ruleset.rules[1]
    query = rule.reach_query()
    near = {"a": 0, "b": 1, "c": 2}
    view = GraphView({query: {"a": reach(near)}}, [
        hit("h0", "a", "2026-11-01T11:59:00.000Z"),  # the account itself: not a neighbour
        hit("h1", "b", "2026-11-01T10:59:59.999Z"),  # too old
        hit("h2", "c", "2026-11-01T11:30:00.000Z", mode="shadow"),  # shadow hits do not flag
        hit("h3", "z", "2026-11-01T11:30:00.000Z"),  # not within reach
        hit("h4", "c", "2026-11-01T11:30:00.000Z", rule="ring", kind="shared_identifier"),  # derived kind
    ])
    assert rule.judge_graph(EVENT, view) is None
    flagged = view.with_hits([hit("h5", "c", "2026-11-01T12:00:00.000Z")])
    finding = rule.judge_graph(EVENT, flagged)
    assert finding is not None and finding.value == 1
    assert finding.evidence["flagged_accounts"] == [{"account": "c", "hops": 2, "rules": ["velocity-1m"]}]
    assert finding.edge_to == ("account_id", "c")
    future = view.with_hits([hit("h6", "b", "2026-11-01T12:00:00.001Z")])  # after the event
    assert rule.judge_graph(EVENT, future) is None


def test_near_flagged_threshold_counts_only_flagged_neighbours() -> None:
    ruleset = rules("""
        - {id: velocity-1m, kind: velocity, window: 1m, threshold: 5}
        - {id: near, kind: near_flagged, hops: 2, window: 1h, threshold: 1}
        """)
    rule = ruleset.rules[1]
    near = GraphView({rule.reach_query(): {"a": reach({"a": 0, "b": 1, "c": 2})}})
    one = near.with_hits([hit("h1", "b", "2026-11-01T11:30:00.000Z"), hit("h0", "a", "2026-11-01T11:59:00.000Z")])
    assert rule.judge_graph(EVENT, one) is None  # one flagged neighbour (and the account itself) is not > 1
    stale = one.with_hits([hit("h2", "c", "2026-11-01T10:00:00.000Z")])
    assert rule.judge_graph(EVENT, stale) is None  # two neighbours with hits, but c's is too old to flag
    two = stale.with_hits([hit("h3", "c", "2026-11-01T11:45:00.000Z")])
    finding = rule.judge_graph(EVENT, two)
    assert finding is not None and finding.value == 2
    assert [f["account"] for f in finding.evidence["flagged_accounts"]] == ["b", "c"]
    assert rule.reach_query() == ruleset.rules[1].reach_query() and rule.reach_query().max_hops == 2


def test_composite_event_and_account_scope() -> None:
    ruleset = rules("""
        - {id: big, kind: sum_over, window: 5m, threshold: 100}
        - {id: ring, kind: shared_identifier, threshold: 3}
        - {id: spike, kind: amount_spike, window: 1h, factor: 3}
        - {id: both, kind: composite, rules: {big: 1, ring: 1}, threshold: 1.5}
        - {id: acct, kind: composite, scope: account, window: 1h, rules: {big: 1, ring: 0.5, spike: 0.75},
           threshold: 1.2}
        """)
    both, acct = ruleset.rules[3], ruleset.rules[4]
    same_event = [hit("h1", "a", "2026-11-01T12:00:00.000Z", "big", "sum_over", event="ev")]
    view = GraphView({}, same_event)
    assert both.judge_graph(EVENT, view) is None  # 1 is not > 1.5
    view = view.with_hits([hit("h2", "a", "2026-11-01T12:00:00.000Z", "ring", "shared_identifier", event="ev"),
                           hit("h3", "a", "2026-11-01T12:00:00.000Z", "big", "sum_over", event="ev")])
    finding = both.judge_graph(EVENT, view)
    assert finding is not None and finding.value == 2  # each rule counts once
    earlier = GraphView({}, [hit("h4", "a", "2026-11-01T11:30:00.000Z", "spike", "amount_spike"),
                             hit("h5", "a", "2026-11-01T11:00:00.000Z", "ring", "shared_identifier"),  # too old
                             hit("h6", "b", "2026-11-01T11:30:00.000Z", "big", "sum_over")])  # other account
    assert acct.judge_graph(EVENT, earlier) is None  # 0.75
    assert acct.judge_graph(EVENT, GraphView({}, [])) is None  # no hit of the account at all
    finding = acct.judge_graph(EVENT, earlier.with_hits([hit("h7", "a", "2026-11-01T11:59:00.000Z", "ring",
                                                             "shared_identifier")]))
    assert finding is not None and finding.value == pytest.approx(1.25)


@pytest.mark.parametrize(("text", "words"), [
    ("- {id: c, kind: composite, rules: {nope: 1}, threshold: 0}", "refers to unknown rule 'nope'"),
    ("- {id: c, kind: composite, rules: {c: 1}, threshold: 0}", "cannot refer to itself"),
    ("- {id: a, kind: composite, rules: {b: 1}, threshold: 0}\n- {id: b, kind: composite, rules: {a: 1}, threshold: 0}",
     "cannot combine other composite rules"),
    ("- {id: c, kind: composite, scope: account, rules: {c: 1}, threshold: 0}", "needs a window"),
    ("- {id: s, kind: shared_identifier, via: [merchant_id], threshold: 2}", "via must list identifier fields"),
    ("- {id: n, kind: near_flagged, window: 1h, rules: [ghost]}", "refers to unknown rule 'ghost'"),
    ("- {id: v, kind: velocity, window: 1m, threshold: 1, edge: {to: amount}}", "not an entity field"),
])
def test_graph_rule_references_are_checked(text: str, words: str) -> None:
    with pytest.raises(RulesFileError) as caught:
        rules(text)
    assert words in str(caught.value)
