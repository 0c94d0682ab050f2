"""`examples:` in rules.yaml: parsed and bounded by the loader, kept out of the version, and run
through the real pipeline by `rules test` with failures that say why."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.rules import RulesFileError, load_rules_file, load_rules_text
from chalicelib.rules.examples import MAX_EXAMPLES_PER_RULE, ExampleFile, RuleExample
from fraudtools.cli import main
from fraudtools.cli.rules_test import run_all_examples
from tests.conftest import PROJECT

PLAIN = """\
version: 1
rules:
  - {id: sum-5m, kind: sum_over, key: account_id, field: amount, window: 5m, threshold: 1000}
"""
WITH_EXAMPLES = """\
version: 1
rules:
  - id: sum-5m
    kind: sum_over
    key: account_id
    field: amount
    window: 5m
    threshold: 1000
    examples:
      - name: two payments add up
        fires: true
        history: [{amount: 600, ts: "2026-11-01T12:01:00Z"}]
        event: {amount: 500, ts: "2026-11-01T12:04:00Z"}
      - fires: false
        history: [{amount: 600, ts: "2026-11-01T12:00:00Z"}]
        event: {amount: 500, ts: "2026-11-01T12:05:00Z"}
      - file: more-examples.yaml
"""
MORE = """\
- {fires: false, event: {amount: 1000, ts: "2026-11-01T12:00:00Z"}}
- {fires: true, event: {amount: 1000.01, ts: "2026-11-01T12:00:00Z"}}
"""


def write(tmp_path: Path, rules: str, more: str | None = MORE) -> Path:
    (tmp_path / "rules.yaml").write_text(rules)
    if more is not None:
        (tmp_path / "more-examples.yaml").write_text(more)
    return tmp_path / "rules.yaml"


def test_examples_are_parsed_and_do_not_change_the_version() -> None:
    plain, with_examples = load_rules_text(PLAIN), load_rules_text(WITH_EXAMPLES)
    assert plain.version == with_examples.version
    examples = with_examples.configs[0].examples
    assert [type(e) for e in examples] == [RuleExample, RuleExample, ExampleFile]
    assert examples[0].fires and examples[0].history[0]["amount"] == 600


@pytest.mark.parametrize(("examples", "message"), [
    ("[{fires: true}]", "event"),
    ("[{fires: maybe, event: {ts: 0}}]", "fires"),
    ("[{fires: true, event: {amount: 1}}]", "needs a 'ts'"),
    ("[{file: ../elsewhere.yaml}]", "file"),
    ("[{fires: true, event: {ts: 0}, extra: 1}]", "unknown key"),
    ("[" + ", ".join(["{fires: true, event: {ts: 0}}"] * (MAX_EXAMPLES_PER_RULE + 1)) + "]", "at most"),
])
def test_bad_examples_are_located_errors(examples: str, message: str) -> None:
    text = PLAIN.replace("threshold: 1000}", f"threshold: 1000, examples: {examples}}}")
    with pytest.raises(RulesFileError) as caught:
        load_rules_text(text)
    issue = caught.value.issues[0]
    assert issue.rule_id == "sum-5m" and issue.line == 3
    assert message in str(caught.value)


def test_passing_examples_pass(tmp_path: Path) -> None:
    path = write(tmp_path, WITH_EXAMPLES)
    outcomes = run_all_examples(load_rules_file(path), tmp_path)
    assert [(o.label, o.passed) for o in outcomes] == [
        ("example 1 (two payments add up)", True), ("example 2", True),
        ("more-examples.yaml #1", True), ("more-examples.yaml #2", True)]


def test_failing_examples_report_rule_example_aggregate_and_threshold(tmp_path: Path) -> None:
    flipped = WITH_EXAMPLES.replace("fires: true", "fires: TRUE").replace("fires: false", "fires: true")
    path = write(tmp_path, flipped.replace("fires: TRUE", "fires: false"), more=None)
    outcomes = run_all_examples(load_rules_file(path), tmp_path)
    assert [o.passed for o in outcomes] == [False, False, False]
    assert outcomes[0].message() == (
        "sum-5m, example 1 (two payments add up): expected not to fire, but it fired: aggregate 1100, "
        "threshold 1000; window (2026-11-01T11:59:00.000Z, 2026-11-01T12:04:00.000Z] of account_id=acct-1 "
        "holds 2 events ['sum-5m-ex1-h1', 'sum-5m-ex1']")
    # The boundary case: the 600 is exactly five minutes old, so only the 500 is in the window.
    assert outcomes[1].message().startswith(
        "sum-5m, example 2: expected to fire, but it did not fire: aggregate 500, threshold 1000; "
        "window (2026-11-01T12:00:00.000Z, 2026-11-01T12:05:00.000Z] of account_id=acct-1 holds 1 events "
        "['sum-5m-ex2']")
    assert "cannot read examples file" in outcomes[2].message()


def test_an_invalid_example_event_is_reported_not_raised(tmp_path: Path) -> None:
    path = write(tmp_path, PLAIN.replace("threshold: 1000}", "threshold: 1000, examples: "
                                         "[{fires: true, event: {ts: 0, amount: lots}}]}"), more=None)
    (outcome,) = run_all_examples(load_rules_file(path), tmp_path)
    assert not outcome.passed and "invalid event sum-5m-ex1" in outcome.message()


def test_rules_test_command_exit_code_and_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(write(tmp_path, WITH_EXAMPLES))]) == 0
    assert "4 of 4 examples pass" in capsys.readouterr().out
    bad = write(tmp_path, WITH_EXAMPLES.replace("threshold: 1000", "threshold: 2000"))
    assert main(["rules", "test", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "FAIL sum-5m: 2 of 4 examples pass" in captured.out
    assert "FAILED sum-5m, example 1 (two payments add up): expected to fire, but it did not fire: " \
           "aggregate 1100, threshold 2000" in captured.err


def test_require_examples_fails_a_rule_without_any(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, PLAIN, more=None)
    assert main(["rules", "test", str(path)]) == 0
    assert main(["rules", "test", str(path), "--require-examples"]) == 1
    assert "sum-5m, examples: cannot run: the rule has no examples" in capsys.readouterr().err


def test_every_default_rule_has_passing_examples_both_ways() -> None:
    ruleset = load_rules_file(PROJECT / "rules.yaml")
    outcomes = run_all_examples(ruleset, PROJECT, require=True)
    assert [o.message() for o in outcomes if not o.passed] == []
    for rule in ruleset.rules:
        mine = [o for o in outcomes if o.rule_id == rule.id]
        assert {o.expected for o in mine} == {True, False}, rule.id
        # explain's window judged by the kind agrees with the pipeline on every example
        assert all("MISMATCH" not in (o.explanation.reason if o.explanation else "") for o in mine)


def test_examples_are_not_in_the_config_dump() -> None:
    # The documented contract: examples are excluded from the config dump, and so from the version.
    assert "examples" not in load_rules_text(WITH_EXAMPLES).configs[0].model_dump()
