"""`backtest` and `explain` on hand-built cases whose answers are computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudtools.cli import main

RULES = """\
version: 1
rules:
  - {id: sum-5m, kind: sum_over, key: account_id, field: amount, window: 5m, threshold: THRESHOLD}
  - {id: busy-2m, kind: velocity, key: account_id, window: 2m, threshold: 2}
"""
#: account a: 300 at 12:00, 12:01, 12:02, 200 at 12:03 (running sums 300, 600, 900, 1100); b: 600.
EVENTS = [
    {"event_id": "a1", "account_id": "a", "amount": 300, "ts": "2026-11-01T12:00:00Z"},
    {"event_id": "a2", "account_id": "a", "amount": 300, "ts": "2026-11-01T12:01:00Z"},
    {"event_id": "b1", "account_id": "b", "amount": 600, "ts": "2026-11-01T12:01:30Z"},
    {"event_id": "a3", "account_id": "a", "amount": 300, "ts": "2026-11-01T12:02:00Z"},
    {"event_id": "a4", "account_id": "a", "amount": 200, "ts": "2026-11-01T12:03:00Z"},
]


def files(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(RULES.replace("THRESHOLD", "1000"))
    new.write_text(RULES.replace("THRESHOLD", "500"))
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"events": {"a2": "drain", "a3": "drain", "a4": "drain"},
                                  "accounts": {"a": "drain"}}))
    return old, new, events, labels


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_lowering_a_threshold_adds_exactly_the_known_hits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new, events, labels = files(tmp_path)
    report = run_json(capsys, "backtest", "--rules", str(new), "--baseline", str(old), "--events", str(events),
                      "--labels", str(labels), "--json", "--batch-size", "2")
    by_rule = {d["rule_id"]: d for d in report["diff"]}
    summed = by_rule["sum-5m"]
    # 1000 -> 500: a2 (600), b1 (600) and a3 (900) join a4 (1100); nothing is lost.
    assert (summed["baseline_hits"], summed["new_hits"]) == (1, 4)
    assert [x["event_id"] for x in summed["added"]] == ["a2", "b1", "a3"]
    assert summed["added_count"] == 3 and summed["removed_count"] == 0 and summed["removed"] == []
    assert [x["value"] for x in summed["added"]] == [600, 600, 900]
    # Labels a2, a3, a4: before TP 1 (a4), FP 0, two misses; after TP 3, FP 1 (b1), no miss.
    before, after = summed["scores"]["before"], summed["scores"]["after"]
    assert (before["tp"], before["fp"], before["positives"]) == (1, 0, 3)
    assert before["precision"] == 1.0 and before["recall"] == pytest.approx(1 / 3)
    assert (after["tp"], after["fp"]) == (3, 1)
    assert after["precision"] == 0.75 and after["recall"] == 1.0 and after["f1"] == pytest.approx(6 / 7)
    # busy-2m is unchanged: a3 (a1 at 12:00 is exactly 2m old: a2, a3 = 2) does not fire, a4 does not
    # either (a2 is exactly 2m old) - no hit in both rulesets.
    assert by_rule["busy-2m"]["added_count"] == by_rule["busy-2m"]["removed_count"] == 0


def test_backtest_without_baseline_counts_every_hit_as_added(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    _, new, events, _ = files(tmp_path)
    report = run_json(capsys, "backtest", "--rules", str(new), "--events", str(events), "--json")
    summed = next(d for d in report["diff"] if d["rule_id"] == "sum-5m")
    assert (summed["baseline_hits"], summed["added_count"], summed["scores"]) == (0, 4, None)


def test_backtest_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new, events, labels = files(tmp_path)
    assert main(["backtest", "--rules", str(new), "--baseline", str(old), "--events", str(events),
                 "--labels", str(labels)]) == 0
    out = capsys.readouterr().out
    assert "sum-5m                       hits 1 -> 4: +3 added, -0 removed" in out
    assert "    + b1 at 2026-11-01T12:01:30.000Z account b: 600 > 500" in out
    assert "precision 100.0% -> 75.0%, recall 33.3% -> 100.0%" in out


def test_explain_shows_the_hand_computed_window(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, new, events, _ = files(tmp_path)
    history = tmp_path / "history.jsonl"
    late = {"event_id": "late", "account_id": "a", "amount": 5000, "ts": "2026-11-01T12:09:00Z"}
    history.write_text(events.read_text() + json.dumps(late) + "\n")
    event = {"event_id": "x", "account_id": "a", "amount": 50, "ts": "2026-11-01T12:04:00Z"}
    report = run_json(capsys, "explain", "--rules", str(new), "--history", str(history),
                      "--event", json.dumps(event), "--json")
    rules = {r["rule_id"]: r for r in report["rules"]}
    # sum-5m at 12:04: window (11:59, 12:04] holds a1..a4 and x (late is after x's ts): 1150 > 500.
    summed = rules["sum-5m"]
    assert (summed["window_start"], summed["window_end"]) == ("2026-11-01T11:59:00.000Z", "2026-11-01T12:04:00.000Z")
    assert summed["contributing"] == ["a1", "a2", "a3", "a4", "x"]
    assert (summed["aggregate"], summed["threshold"], summed["verdict"]) == (1150, 500, "fires")
    assert summed["evidence"]["event_ids"] == summed["contributing"]  # what the hit stores
    # busy-2m at 12:04: window (12:02, 12:04] holds a4 and x (a3 is exactly 2m old): 2, not > 2.
    busy = rules["busy-2m"]
    assert busy["window_start"] == "2026-11-01T12:02:00.000Z"
    assert busy["contributing"] == ["a4", "x"]
    assert (busy["aggregate"], busy["threshold"], busy["verdict"]) == (2, 2, "no hit")
    assert busy["evidence"] == {}


def test_explain_text_and_a_rule_not_judged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - {id: by-ip, kind: velocity, key: ip, window: 1m, threshold: 0}\n"
                     "  - {id: big, kind: velocity, window: 1m, threshold: 0, where: [{field: amount, op: gt, "
                     "value: 100}]}\n")
    assert main(["explain", "--rules", str(rules), "--event",
                 '{"event_id": "x", "account_id": "a", "amount": 5, "ts": 0}']) == 0
    out = capsys.readouterr().out
    assert "NOT JUDGED by-ip (velocity, enforce)\n    the event has no ip" in out
    assert "NOT JUDGED big (velocity, enforce)\n    key account_id = a\n    where fails: amount gt 100 " \
           "(the event has 5)" in out


def test_explain_rejects_an_invalid_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, new, _, _ = files(tmp_path)
    assert main(["explain", "--rules", str(new), "--event", '{"account_id": "a"}']) == 1
    assert "the event is not a valid record" in capsys.readouterr().err
