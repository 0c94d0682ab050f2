"""Evaluation arithmetic against hand-computed cases."""

from __future__ import annotations

import pytest

from fraudtools.scoring import Score, evaluate_hits, markdown_table, reading


def hit(event: str, account: str, rule: str, kind: str, mode: str = "enforce") -> dict[str, str]:
    return {"event_id": event, "account_id": account, "rule_id": rule, "kind": kind, "mode": mode,
            "ruleset_version": "v1"}


EVENTS = {"r1": "ring", "r2": "ring", "r3": "ring", "r4": "ring", "f1": "fanout", "f2": "fanout"}
ACCOUNTS = {"A": "ring", "B": "ring", "F": "fanout"}
HITS = [
    hit("r1", "A", "ring-rule", "shared_identifier"),
    hit("r2", "B", "ring-rule", "shared_identifier"),
    hit("r2", "B", "velocity", "velocity"),
    hit("f1", "F", "fanout", "fan_out"),
    hit("n1", "N", "velocity", "velocity"),  # a false positive (normal event, normal account)
    hit("n2", "N", "velocity", "velocity"),
    hit("r3", "A", "spike", "amount_spike", mode="shadow"),  # shadow: not acted on
    hit("r4", "A", "combo", "composite"),
]


def test_scores_by_hand() -> None:
    ev = evaluate_hits(HITS, EVENTS, ACCOUNTS)
    # event level, micro: detected {r2, f1, n1, n2}; positives 6 -> TP 2, FP 2
    assert ev.score("event", "micro") == Score(tp=2, fp=2, positives=6)
    assert ev.score("event", "micro").precision == 0.5
    assert ev.score("event", "micro").recall == pytest.approx(2 / 6)
    assert ev.score("event", "micro").f1 == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    # per scenario: ring TP {r2}; fanout TP {f1}; both share the 2 false positives
    assert ev.score("event", "micro", "ring") == Score(1, 2, 4)
    assert ev.score("event", "micro", "fanout") == Score(1, 2, 2)
    # macro: {r1, r2}, no false positives
    assert ev.score("event", "macro") == Score(2, 0, 6) and ev.score("event", "macro").precision == 1.0
    assert ev.score("event", "macro", "fanout").recall == 0.0 and ev.score("event", "macro", "fanout").f1 == 0.0
    # combined: {r1, r2, r4, f1, n1, n2}: TP 4, FP 2
    assert ev.score("event", "combined") == Score(4, 2, 6)
    assert ev.score("event", "composite") == Score(1, 0, 6)
    # account level: micro {B, F, N}; macro {A, B}; combined {A, B, F, N}
    assert ev.score("account", "micro") == Score(2, 1, 3)
    assert ev.score("account", "macro") == Score(2, 0, 3)
    assert ev.score("account", "combined") == Score(3, 1, 3)
    assert ev.hits_by_rule == {"combo": 1, "fanout": 1, "ring-rule": 2, "spike": 1, "velocity": 3}


def test_undefined_ratios_are_none() -> None:
    empty = Score(0, 0, 0)
    assert empty.precision is None and empty.recall is None and empty.f1 is None


def test_reports_render_the_numbers() -> None:
    ev = evaluate_hits(HITS, EVENTS, ACCOUNTS)
    table = markdown_table(ev, "event")
    assert "| fanout | 2 | 33% / 50% / 40% | – / 0% / 0% |" in table
    assert "| **overall** | 6 | 50% / 33% / 40% | 100% / 33% / 50% | 67% / 67% / 67% |" in table
    text = "\n".join(reading(ev))
    assert "combining beats the better single view on F1 (67% vs 50%)" in text


def test_lookalikes_are_counted_per_family_and_detector() -> None:
    hits = [*HITS, hit("o1", "O1", "linked", "linked_component"), hit("x", "A", "linked", "linked_component")]
    ev = evaluate_hits(hits, EVENTS, ACCOUNTS, {"N": "office_ip", "O1": "family", "O2": "family", "A": "family"})
    assert ev.lookalikes["office_ip"]["micro"] == (1, 1) and ev.lookalikes["office_ip"]["macro"] == (0, 1)
    assert ev.lookalikes["family"]["macro"] == (1, 2)  # A is labelled fraud: not a look-alike
    assert ev.score("account", "macro").fp == 1  # linked_component is a macro kind


def test_generalisation_sections_say_where_targets_are_missed() -> None:
    from fraudtools.scoring import generalisation_sections

    ev = evaluate_hits(HITS, EVENTS, ACCOUNTS)
    reference = {"records": 3, "ring_size": 11, "rules": {"r": {"ring": 11, "others": 3}},
                 "detectors": {d: {"ring": 11, "others": ["x", "y", "z"]} for d in ("micro", "macro", "combined",
                                                                                    "composite")}}
    text = "\n".join(generalisation_sections({1: ev}, {7: ev}, reference))
    assert "Targets missed on held-out seeds 7" in text  # no hub-less ring family: macro recall 0
    assert "11/11 flagged; other accounts flagged: 3 (x, y, z)" in text and "**missed**" in text
    assert "Seeds 1: the new rules' thresholds" in text


def test_a_plugin_graph_kind_is_scored_as_macro_and_flags_by_its_declaration(monkeypatch: pytest.MonkeyPatch) -> None:
    from typing import Literal

    from chalicelib.entities import GraphView
    from chalicelib.events import Transaction
    from chalicelib.rules import Finding, GraphRule, RuleConfig, registry
    from chalicelib.rules.base import RuleContext
    from chalicelib.rules.near_flagged import NearFlaggedConfig, NearFlaggedRule
    from chalicelib.rules.registry import flags_account, view_of

    class RingScoreConfig(RuleConfig):
        kind: Literal["ring_score"] = "ring_score"

    class RingScoreRule(GraphRule[RingScoreConfig]):
        config_model = RingScoreConfig
        flags_account = False

        def judge_graph(self, event: Transaction, view: GraphView) -> Finding | None:
            return None

    monkeypatch.setitem(registry._KINDS, "ring_score", (RingScoreConfig, RingScoreRule))
    assert view_of("ring_score") == "macro" and not flags_account("ring_score")
    assert view_of("composite") == "composite" and view_of("velocity") == "micro"
    assert view_of("not_loaded_here") == "micro" and flags_account("not_loaded_here")
    ev = evaluate_hits([hit("r1", "A", "ring", "ring_score")], EVENTS, ACCOUNTS)
    assert ev.scores["event"]["macro"]["ring"].tp == 1 and ev.scores["event"]["micro"]["ring"].tp == 0
    near = NearFlaggedRule(NearFlaggedConfig.model_validate({"id": "near", "window": "1h"}), RuleContext())
    assert not near.counts("ring", "ring_score") and near.counts("v", "velocity")
