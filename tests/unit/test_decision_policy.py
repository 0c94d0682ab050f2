"""`decisions:` in rules.yaml: validated with located errors, bounded, part of the version only
when given; the policy's decision over hits; `rules test` examples that state a decision."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.rules import RulesFileError, load_rules_file, load_rules_text
from chalicelib.rules.policy import DEFAULT_POLICY
from fraudtools.cli.rules_test import run_all_examples

RULES = """\
version: 1
rules:
  - {id: big, kind: sum_over, key: account_id, field: amount, window: 5m, threshold: 1000, severity: high}
  - {id: huge, kind: sum_over, key: account_id, field: amount, window: 5m, threshold: 5000, severity: critical}
  - {id: quiet, kind: sum_over, key: account_id, field: amount, window: 5m, threshold: 10, severity: critical,
     mode: shadow}
"""


def with_policy(policy: str) -> str:
    return RULES.replace("rules:\n", policy + "rules:\n", 1)


def test_the_default_declines_critical_reviews_high_and_ignores_shadow() -> None:
    policy = load_rules_text(RULES).policy
    assert policy == DEFAULT_POLICY
    assert policy.decide([]) == "approve"
    assert policy.decide([("x", "enforce", "medium"), ("y", "enforce", "low")]) == "approve"
    assert policy.decide([("big", "enforce", "high")]) == "review"
    assert policy.decide([("big", "enforce", "high"), ("huge", "enforce", "critical")]) == "decline"
    assert policy.decide([("quiet", "shadow", "critical")]) == "approve"


def test_per_rule_overrides_win_over_severity() -> None:
    policy = load_rules_text(with_policy("decisions:\n  severity: {medium: review}\n"
                                         "  rules: {huge: review, big: approve}\n")).policy
    assert policy.decide([("huge", "enforce", "critical")]) == "review"
    assert policy.decide([("big", "enforce", "high")]) == "approve"
    assert policy.decide([("other", "enforce", "medium")]) == "review"
    assert policy.decide([("other", "enforce", "critical")]) == "approve"  # the severity map replaces the default


def test_the_policy_is_in_the_version_only_when_given() -> None:
    plain = load_rules_text(RULES).version
    assert load_rules_text(with_policy("decisions: {}\n")).version == plain  # the default, spelt out
    assert load_rules_text(with_policy("decisions: {rules: {big: decline}}\n")).version != plain


@pytest.mark.parametrize(("policy", "line", "field", "message"), [
    ("decisions: {rules: {nope: decline}}\n", 2, "decisions.rules", "unknown rule 'nope'"),
    ("decisions: {rules: {bgi: decline}}\n", 2, "decisions.rules", "did you mean 'big'?"),
    ("decisions: {rules: {big: block}}\n", 2, "decisions.rules.big", "'approve', 'review' or 'decline'"),
    ("decisions: {severity: {severe: decline}}\n", 2, "decisions.severity.severe", "'low', 'medium'"),
    ("decisions: {per_rule: {}}\n", 2, "decisions.per_rule", "unknown key"),
])
def test_bad_policies_are_located_errors(policy: str, line: int, field: str, message: str) -> None:
    with pytest.raises(RulesFileError) as caught:
        load_rules_text(with_policy(policy), name="rules.yaml")
    issues = [i for i in caught.value.issues if i.field is not None and i.field.startswith(field)]
    assert issues, caught.value.issues
    assert issues[0].line == line and message in issues[0].message, issues[0]


def test_the_policy_is_bounded() -> None:
    too_many = "decisions:\n  rules: {" + ", ".join(f"r{i}: decline" for i in range(1001)) + "}\n"
    with pytest.raises(RulesFileError, match="at most 1000"):
        load_rules_text(with_policy(too_many))


def test_examples_may_state_the_decision(tmp_path: Path) -> None:
    examples = """
    examples:
      - {fires: true, decision: review, event: {amount: 2000, ts: "2026-11-01T12:00:00Z"}}
      - {fires: true, decision: approve, event: {amount: 3000, ts: "2026-11-01T12:00:00Z"}}
      - {fires: false, decision: approve, event: {amount: 5, ts: "2026-11-01T12:00:00Z"}}
"""
    text = RULES.replace("  - {id: big, kind: sum_over, key: account_id, field: amount, window: 5m, threshold: 1000,"
                         " severity: high}\n",
                         "  - id: big\n    kind: sum_over\n    field: amount\n    window: 5m\n    threshold: 1000\n"
                         "    severity: high" + examples)
    (tmp_path / "rules.yaml").write_text(text)
    outcomes = run_all_examples(load_rules_file(tmp_path / "rules.yaml"), tmp_path)
    assert [(o.passed, o.decision) for o in outcomes] == [(True, "review"), (False, "review"), (True, "approve")]
    assert outcomes[1].message() == "big, example 2: expected the decision approve, but it was review"
