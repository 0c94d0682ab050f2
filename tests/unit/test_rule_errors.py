"""A rule that raises while judging is quarantined: the batch commits with the other rules' hits,
the error is logged and counted, and the same records are not redelivered forever."""

from __future__ import annotations

import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.events import Transaction
from chalicelib.rules import RuleSet, load_rules_text
from chalicelib.rules import registry as rule_registry
from fraudtools.cli import embedded_pipeline
from tests.fakes import MemoryHitSink, memory_pipeline, raw_records

PLUGIN = textwrap.dedent("""\
    from typing import Literal
    from chalicelib.rules import Finding, GraphRule, Rule, RuleConfig, register_rule_kind

    class ExplodingConfig(RuleConfig):
        kind: Literal["exploding"] = "exploding"
        on_account: str = "boom"

    @register_rule_kind
    class ExplodingRule(Rule[ExplodingConfig]):
        config_model = ExplodingConfig

        def judge(self, event, window):
            if event.account_id == self.config.on_account:
                raise ZeroDivisionError("division by zero in a plugin")
            return Finding(1, 0)

    class ExplodingGraphConfig(RuleConfig):
        kind: Literal["exploding_graph"] = "exploding_graph"
        on_account: str = "boom"

    @register_rule_kind
    class ExplodingGraphRule(GraphRule[ExplodingGraphConfig]):
        config_model = ExplodingGraphConfig

        def judge_graph(self, event, view):
            if event.account_id == self.config.on_account:
                raise KeyError("missing in the view")
            return Finding(1, 0)

    class ExplodingReachConfig(RuleConfig):
        kind: Literal["exploding_reach"] = "exploding_reach"

    @register_rule_kind
    class ExplodingReachRule(GraphRule[ExplodingReachConfig]):
        config_model = ExplodingReachConfig

        def reach_query(self):
            raise ValueError("cannot say what it needs")

        def judge_graph(self, event, view):
            return Finding(1, 0)
    """)


@pytest.fixture
def exploding_kinds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "exploding_kinds.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("exploding_kinds", None)
    for kind in ("exploding", "exploding_graph", "exploding_reach"):
        rule_registry._KINDS.pop(kind, None)


def ruleset(*rules: str) -> RuleSet:
    body = "".join(f"  - {r}\n" for r in rules)
    return load_rules_text(f"version: 1\nplugins: [exploding_kinds]\nrules:\n{body}",
                           plugins_allowed=("exploding_kinds",))


def events(*accounts: str, first: int = 0) -> list[Transaction]:
    return [Transaction(event_id=f"e{first + i}", ts=1_000 * (first + i), account_id=a, amount=10)
            for i, a in enumerate(accounts)]


def test_a_micro_rule_that_raises_is_quarantined_and_the_batch_commits(
        exploding_kinds: None, caplog: pytest.LogCaptureFixture) -> None:
    rules = ruleset("{id: every, kind: velocity, window: 1h, threshold: 0}", "{id: broken, kind: exploding}")
    hits = MemoryHitSink()
    pipeline = memory_pipeline(rules, hits)
    batch = raw_records(events("a", "boom", "c"))
    with caplog.at_level(logging.ERROR):
        report = pipeline.process(batch)
    assert report.failed_from is None and report.error is None  # committed: no redelivery
    assert dict(report.rule_errors) == {"broken": 1}
    assert report.to_dict()["rule_errors"] == {"broken": 1}
    assert sorted((h.rule_id, h.event_id) for h in hits.hits.values()) == [
        ("every", "e0"), ("every", "e1"), ("every", "e2")]  # the broken rule's hits of the batch are dropped
    assert "rule broken (kind exploding) raised ZeroDivisionError" in caplog.text
    assert rules.quarantined == {"broken"}

    again = pipeline.process(batch)  # a redelivery: nothing left to judge, nothing raises
    assert (again.duplicates, again.rejudged, dict(again.rule_errors)) == (3, 0, {})
    later = pipeline.process(raw_records(events("boom", "d", first=3), first_sequence=3))
    assert dict(later.rule_errors) == {}  # skipped for the rest of this version
    assert sorted(h.event_id for h in later.new_hits) == ["e3", "e4"]
    assert {h.rule_id for h in later.new_hits} == {"every"}


def test_a_new_ruleset_version_brings_a_quarantined_rule_back(exploding_kinds: None) -> None:
    first = ruleset("{id: broken, kind: exploding}")
    memory_pipeline(first).process(raw_records(events("boom")))
    assert first.quarantined == {"broken"}
    fixed = ruleset("{id: broken, kind: exploding, on_account: nobody}")
    report = memory_pipeline(fixed).process(raw_records(events("boom")))
    assert fixed.quarantined == set() and [h.rule_id for h in report.new_hits] == ["broken"]


def test_a_graph_rule_that_raises_is_quarantined_and_the_batch_commits(
        exploding_kinds: None, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rules = ruleset("{id: every, kind: velocity, window: 1h, threshold: 0}",
                    "{id: graph-broken, kind: exploding_graph}",
                    "{id: both, kind: composite, rules: {every: 1, graph-broken: 1}, threshold: 0.5}")
    pipeline = embedded_pipeline(rules, tmp_path, tmp_path / "hits.jsonl")
    try:
        with caplog.at_level(logging.ERROR):
            report = pipeline.process(raw_records(events("a", "boom", "c")))
        assert report.failed_from is None
        assert dict(report.rule_errors) == {"graph-broken": 1}
        found = sorted((h.rule_id, h.event_id) for h in report.new_hits)
        assert found == [("both", "e0"), ("both", "e1"), ("both", "e2"),
                         ("every", "e0"), ("every", "e1"), ("every", "e2")]
        assert "rule graph-broken (kind exploding_graph) raised KeyError" in caplog.text
        assert pipeline.process(raw_records(events("a", "boom", "c"))).duplicates == 3
    finally:
        pipeline.close()


def test_a_graph_rule_whose_reach_query_raises_is_quarantined(exploding_kinds: None, tmp_path: Path) -> None:
    rules = ruleset("{id: every, kind: velocity, window: 1h, threshold: 0}", "{id: no-reach, kind: exploding_reach}")
    pipeline = embedded_pipeline(rules, tmp_path, tmp_path / "hits.jsonl")
    try:
        report = pipeline.process(raw_records(events("a", "b")))
    finally:
        pipeline.close()
    assert report.failed_from is None and dict(report.rule_errors) == {"no-reach": 1}
    assert sorted((h.rule_id, h.event_id) for h in report.new_hits) == [("every", "e0"), ("every", "e1")]
