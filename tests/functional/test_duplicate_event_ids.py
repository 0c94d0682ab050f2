"""`explain` and `rules test` follow the engine's rule for a repeated `event_id` (DESIGN.md, Rule
semantics 5): the first delivery wins and is never counted twice (issue 18, item 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.rules import load_rules_file
from fraudtools.cli import main
from fraudtools.cli.rules_test import run_all_examples

RULES = """\
version: 1
rules:
  - {id: busy, kind: velocity, window: 10m, threshold: 2}
  - {id: sum, kind: sum_over, window: 10m, threshold: 100}
"""
H1 = {"event_id": "h1", "account_id": "a", "amount": 5, "ts": "2026-11-01T12:00:00Z"}
H2 = {"event_id": "h2", "account_id": "a", "amount": 7, "ts": "2026-11-01T12:05:00Z"}


def explain_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], history: list[dict],
                 event: dict) -> tuple[dict, str]:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    assert main(["explain", "--rules", str(tmp_path / "rules.yaml"), "--history", str(tmp_path / "history.jsonl"),
                 "--event", json.dumps(event), "--json"]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def test_explain_an_event_already_in_the_history_explains_its_first_delivery(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The redelivery carries other content; the engine keeps and judged the first delivery.
    redelivery = {**H2, "amount": 700, "ts": "2026-11-01T12:06:00Z"}
    report, err = explain_json(tmp_path, capsys, [H1, H2], redelivery)
    assert (report["event"]["event_id"], report["event"]["amount"]) == ("h2", "7")
    rules = {r["rule_id"]: r for r in report["rules"]}
    assert rules["busy"]["contributing"] == ["h1", "h2"]  # once, not h1, h2, h2
    assert (rules["busy"]["aggregate"], rules["busy"]["verdict"]) == (2, "no hit")
    assert (rules["sum"]["aggregate"], rules["sum"]["verdict"]) == (12, "no hit")  # 5 + 7, not 19 or 712
    assert rules["sum"]["window_end"] == "2026-11-01T12:05:00.000Z"
    assert "MISMATCH" not in json.dumps(report)
    assert "event h2 is already in the history" in err and "first delivery" in err


def test_explain_the_verdict_is_the_first_deliverys_hit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = {**H2, "amount": 200}
    report, _ = explain_json(tmp_path, capsys, [H1, big], {**big, "amount": 1})
    summed = next(r for r in report["rules"] if r["rule_id"] == "sum")
    assert (summed["aggregate"], summed["verdict"], summed["contributing"]) == (205, "fires", ["h1", "h2"])
    assert summed["evidence"]["event_ids"] == ["h1", "h2"]


def test_explain_a_repeated_history_id_counts_once_as_first_delivered(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report, _ = explain_json(tmp_path, capsys, [H1, {**H1, "amount": 90}, H2],
                             {"event_id": "e", "account_id": "a", "amount": 3, "ts": "2026-11-01T12:06:00Z"})
    rules = {r["rule_id"]: r for r in report["rules"]}
    assert rules["busy"]["contributing"] == ["h1", "h2", "e"]
    assert rules["sum"]["aggregate"] == 15  # 5 + 7 + 3


EXAMPLES = """\
version: 1
rules:
  - id: sum
    kind: sum_over
    window: 10m
    threshold: 1000
    examples:
      - name: the event repeats a history id
        fires: true
        history: [{event_id: p, amount: 600, ts: "2026-11-01T12:00:00Z"}]
        event: {event_id: p, amount: 500, ts: "2026-11-01T12:01:00Z"}
      - name: a repeated history id counts once
        fires: false
        history:
          - {event_id: h, amount: 400, ts: "2026-11-01T12:00:00Z"}
          - {event_id: h, amount: 400, ts: "2026-11-01T12:00:00Z"}
        event: {amount: 500, ts: "2026-11-01T12:01:00Z"}
"""


def test_rules_test_judges_a_repeated_event_id_as_the_engine_does(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(EXAMPLES)
    outcomes = run_all_examples(load_rules_file(tmp_path / "rules.yaml"), tmp_path)
    repeated, in_history = outcomes
    # The engine never judges p's second delivery: p (600) is the event and did not fire.
    assert not repeated.passed and repeated.fired is False
    message = repeated.message()
    assert "aggregate 600, threshold 1000" in message, message  # not 1100
    assert "holds 1 events ['p']" in message  # not ['p', 'p']
    assert "already in the history" in message and "MISMATCH" not in message
    assert in_history.passed and in_history.explanation is not None  # 400 + 500, not 1300
    assert in_history.explanation.aggregate == 900 and in_history.explanation.contributing_count == 2
