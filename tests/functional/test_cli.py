"""The CLI as a user runs it: `python -m chalicelib ...` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.rules.registry import view_of
from tests.conftest import PROJECT, SEED_SAMPLE


def cli(*args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chalicelib", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def summary(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_replay_accepts_every_record_of_the_reference_producer(tmp_path: Path) -> None:
    out = tmp_path / "hits.jsonl"
    result = summary(cli("replay", "--rules", "rules.yaml", "--events", str(SEED_SAMPLE), "--out", str(out)))
    assert result["events"] == result["accepted"] == 550
    assert result["poison"] == 0 and result["duplicates"] == 0
    hits = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(hits) == sum(result["hits"].values())
    # The producer's high-value records come only from ring accounts 20, 27, 28 and 29.
    flagged = {h["account_id"] for h in hits if h["rule_id"] == "high-value-5m"}
    assert flagged and flagged <= {"1234-5678-20", "1234-5678-27", "1234-5678-28", "1234-5678-29"}
    assert all(h["ruleset_version"] == hits[0]["ruleset_version"] for h in hits)


def test_replay_is_the_same_for_any_batch_size_and_format(tmp_path: Path) -> None:
    # Micro rules only: macro rules are judged on the graph as it stands after each batch's entity
    # writes (DESIGN.md), so how the stream is cut into batches is part of their input.
    data_lines = [json.loads(line)["data"] for line in SEED_SAMPLE.read_text().splitlines()]
    seed_only = tmp_path / "seed.jsonl"
    seed_only.write_text("\n".join(data_lines) + "\n")
    runs = {}
    for name, events, fmt, batch in [("kinesis-100", SEED_SAMPLE, "kinesis", "100"),
                                     ("kinesis-7", SEED_SAMPLE, "auto", "7"),
                                     ("seed-1", seed_only, "seed", "1")]:
        out = tmp_path / f"{name}.jsonl"
        result = summary(cli("replay", "--rules", "rules.yaml", "--events", str(events), "--format", fmt,
                             "--batch-size", batch, "--out", str(out)))
        hits = [h for h in map(json.loads, out.read_text().splitlines()) if view_of(h["kind"]) == "micro"]
        micro_counts = {r: n for r, n in result["hits"].items() if r in {h["rule_id"] for h in hits}}
        runs[name] = (micro_counts, sorted((h["rule_id"], h["ts"]) for h in hits))
    assert runs["kinesis-100"] == runs["kinesis-7"] == runs["seed-1"]


def test_replay_twice_into_the_same_data_dir_counts_duplicates(tmp_path: Path) -> None:
    args = ("replay", "--rules", "rules.yaml", "--events", str(SEED_SAMPLE), "--data-dir", str(tmp_path / "d"))
    first = summary(cli(*args, "--out", str(tmp_path / "a.jsonl")))
    second = summary(cli(*args, "--out", str(tmp_path / "b.jsonl")))
    assert first["accepted"] == 550 and sum(first["hits"].values()) > 0
    assert second == {"events": 550, "accepted": 0, "duplicates": 550, "poison": 0, "hits": {}}


def test_replay_dead_letters_poison_lines(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"account_id": "a", "amount": 5, "ts": 0}\nnot json at all\n'
                      '{"account_id": "b", "amount": "many", "ts": 0}\n')
    data = tmp_path / "d"
    result = summary(cli("replay", "--rules", "rules.yaml", "--events", str(events), "--data-dir", str(data),
                         "--out", str(tmp_path / "h.jsonl")))
    assert (result["events"], result["accepted"], result["poison"]) == (3, 1, 2)
    reasons = [json.loads(line)["reason"] for line in (data / "dead-letters.jsonl").read_text().splitlines()]
    assert "not JSON" in reasons[0] and "amount" in reasons[1]


def test_rules_check(tmp_path: Path) -> None:
    ok = cli("rules", "check", "rules.yaml")
    assert ok.returncode == 0 and "ok, version" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - {id: r, kind: velocity, window: 5 min, threshold: 1}\n")
    failed = cli("rules", "check", str(bad))
    assert failed.returncode == 1
    assert f"{bad}:3 rule 'r' field 'window': invalid duration" in failed.stderr


def test_replay_with_invalid_rules_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules: [{id: r, kind: nope}]\n")
    result = cli("replay", "--rules", str(bad), "--events", str(SEED_SAMPLE), "--out", str(tmp_path / "h"))
    assert result.returncode == 1 and "unknown kind 'nope'" in result.stderr


@pytest.mark.parametrize("command", [[], ["replay"], ["rules"], ["rules", "check"], ["rules", "push"], ["demo"],
                                     ["simulate"], ["evaluate"], ["results"], ["graph"], ["graph", "account"],
                                     ["graph", "rings"], ["kinesis"], ["kinesis", "produce"], ["kinesis", "poll"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout


def test_demo_writes_both_reports(tmp_path: Path) -> None:
    result = cli("demo", "--accounts", "60", "--days", "1", "--data-dir", str(tmp_path))
    totals = summary(result)
    assert totals["accepted"] == totals["events"] > 0 and totals["poison"] == 0
    assert "overall" in result.stdout and "Verdict at event level" in result.stdout
    # the largest group is now the 8-member hub-less chain with its 4-account identity cluster
    assert "largest ring: 12 accounts" in result.stdout and "identity_cluster;" in result.stdout
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") == 2 and "<h2>Precision and recall</h2>" in page
    assert "device_id-hubring-1-2" in page  # the ring drawing names what links it
    from html.parser import HTMLParser

    HTMLParser().feed(page)  # well-formed enough to parse


def test_results_writes_markdown_for_every_seed(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    result = cli("results", "--tuning-seeds", "3", "--seeds", "1,2", "--accounts", "60", "--days", "1",
                 "--data-dir", str(tmp_path / "d"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "generated by `make results`" in text and "| **overall** |" in text
    assert "| 1 | event |" in text and "| 2 | account |" in text
    assert "Verdict at event level" in text and "Across seeds" in text
    # held-out targets per seed, recall per family, look-alikes, the reference ring, tuning seeds apart
    assert "## Held-out seeds: the targets" in text and "| hubless_ring |" in text and "| family |" in text
    assert "Its ring (1234-5678-20..30): 11/11 flagged" in text
    assert "## Tuning seeds (for comparison only)" in text and "Seeds 3:" in text


def test_results_refuses_a_seed_that_is_both_tuning_and_held_out(tmp_path: Path) -> None:
    result = cli("results", "--tuning-seeds", "1", "--seeds", "1,2", "--accounts", "60", "--days", "1",
                 "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "R.md"))
    assert result.returncode == 2 and "both tuning and held-out" in result.stderr


def test_replay_dead_letters_a_line_of_invalid_utf8_and_goes_on(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    good = [json.dumps({"event_id": f"e{i}", "account_id": "a", "amount": 5, "ts": i}).encode() for i in range(3)]
    events.write_bytes(good[0] + b"\n\xff\xfe not utf-8\n"
                       + b'{"sequenceNumber": "7", "partitionKey": "p", "data": "\\ud800"}\n'
                       + good[1].replace(b", ", b",\r") + b"\r\n" + good[2] + b"\n")
    out = tmp_path / "hits.jsonl"
    result = cli("replay", "--rules", "rules.yaml", "--events", str(events), "--out", str(out))
    assert (summary(result)["events"], summary(result)["accepted"], summary(result)["poison"]) == (5, 3, 2)
    dead = tmp_path / "hits.dead-letters.jsonl"  # no --data-dir: dead letters are kept beside --out
    assert f"dead letters: 2 of 5 records dead-lettered; they are in {dead}" in result.stdout
    letters = {d["sequence_number"]: d for d in map(json.loads, dead.read_text().splitlines())}
    assert "not UTF-8" in letters[f"{2:021d}"]["reason"]
    assert "lone surrogate" in letters["7"]["reason"]


def test_replay_with_the_wrong_format_says_every_record_is_poison_and_where(tmp_path: Path) -> None:
    out = tmp_path / "hits.jsonl"
    result = cli("replay", "--rules", "rules.yaml", "--events", str(SEED_SAMPLE), "--format", "native",
                 "--out", str(out))
    assert summary(result) == {"events": 550, "accepted": 0, "duplicates": 0, "poison": 550, "hits": {}}
    dead = tmp_path / "hits.dead-letters.jsonl"
    assert f"every record was dead-lettered (550 of 550), none accepted; they are in {dead}" in result.stdout
    assert "use --format kinesis or auto" in result.stdout
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert len(letters) == 550 and all("is a Kinesis envelope" in d["reason"] for d in letters)


def test_replay_format_seed_refuses_native_lines(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"account_id": "a", "amount": 5, "ts": 0}) + "\n")
    data = tmp_path / "d"
    result = cli("replay", "--rules", "rules.yaml", "--events", str(events), "--format", "seed",
                 "--data-dir", str(data), "--out", str(tmp_path / "h.jsonl"))
    assert (summary(result)["accepted"], summary(result)["poison"]) == (0, 1)
    (letter,) = [json.loads(line) for line in (data / "dead-letters.jsonl").read_text().splitlines()]
    assert "line 1 is not in the seed format: it looks like a native record" in letter["reason"]
    assert str(data / "dead-letters.jsonl") in result.stdout


def test_a_resumed_replay_writes_every_hit_of_the_data_dir_to_out(tmp_path: Path) -> None:
    lines = SEED_SAMPLE.read_bytes().split(b"\n")
    first_part = tmp_path / "first-part.jsonl"  # what a run killed half-way had done
    first_part.write_bytes(b"\n".join(lines[:300]) + b"\n")
    clean = tmp_path / "clean.jsonl"
    summary(cli("replay", "--rules", "rules.yaml", "--events", str(SEED_SAMPLE), "--data-dir",
                str(tmp_path / "clean"), "--out", str(clean)))
    data = ("--data-dir", str(tmp_path / "resumed"))
    summary(cli("replay", "--rules", "rules.yaml", "--events", str(first_part), *data, "--out", str(tmp_path / "a")))
    out = tmp_path / "resumed.jsonl"
    rerun = cli("replay", "--rules", "rules.yaml", "--events", str(SEED_SAMPLE), *data, "--out", str(out))
    new_hits = sum(summary(rerun)["hits"].values())
    every_hit = sorted(clean.read_text().splitlines())
    assert 0 < new_hits < len(every_hit)
    assert sorted(out.read_text().splitlines()) == every_hit
    assert f"holds all {len(every_hit)} hits of" in rerun.stdout and f"({new_hits} new in this run" in rerun.stdout


HIT = {"hit_id": "h1", "rule_id": "r", "kind": "velocity", "mode": "enforce", "event_id": "e1", "account_id": "a1",
       "ruleset_version": "v1"}


@pytest.mark.parametrize(("labels", "hits", "says"), [
    (None, "ok", "does not exist; --labels takes the labels.json"),
    ("ok", None, "does not exist; --hits takes the JSON lines"),
    ('{"events": {}}', "ok", 'is not a labels file: expected {"events"'),
    ("[1, 2]", "ok", "is not a labels file: expected"),
    ("not json", "ok", "is not a labels file: not JSON"),
    ("ok", "{oops\n", ":1 is not a JSON line"),
    ("ok", json.dumps({k: v for k, v in HIT.items() if k != "ruleset_version"}) + "\n",
     ":1 is not a hit: no text field 'ruleset_version'"),
    ("ok", json.dumps({"account_id": "a", "amount": 5, "ts": 0}) + "\n", "it looks like an event, not a hit"),
    ("ok", "[1]\n", ":1 is not a hit object but JSON list"),
])
def test_evaluate_answers_a_wrong_file_with_one_line_and_exit_2(tmp_path: Path, labels: str | None,
                                                                hits: str | None, says: str) -> None:
    labels_path, hits_path = tmp_path / "labels.json", tmp_path / "hits.jsonl"
    if labels is not None:
        labels_path.write_text('{"events": {"e1": "ring"}, "accounts": {"a1": "ring"}}' if labels == "ok" else labels)
    if hits is not None:
        hits_path.write_text(json.dumps(HIT) + "\n" if hits == "ok" else hits)
    result = cli("evaluate", "--labels", str(labels_path), "--hits", str(hits_path))
    assert result.returncode == 2
    assert says in result.stderr and result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_json_output_into_a_closed_pipe_ends_without_a_traceback(tmp_path: Path) -> None:
    labels, hits = tmp_path / "labels.json", tmp_path / "hits.jsonl"
    labels.write_text(json.dumps({"events": {f"e{i}": "ring" for i in range(2000)},
                                  "accounts": {f"a{i}": f"s{i % 50}" for i in range(2000)}}))
    hits.write_text(json.dumps(HIT) + "\n")
    process = subprocess.Popen([sys.executable, "-m", "chalicelib", "evaluate", "--labels", str(labels),
                                "--hits", str(hits), "--json"], cwd=PROJECT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head` that has read what it wanted
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr


def test_replay_into_a_data_dir_holding_a_wrong_file_says_which_without_a_traceback(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "alerts.sqlite").write_text("not a database")
    result = cli("replay", "--rules", "rules.yaml", "--events", str(SEED_SAMPLE), "--data-dir", str(data),
                 "--out", str(tmp_path / "hits.jsonl"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{data / 'alerts.sqlite'}: file is not a database" in result.stderr


def test_replay_to_a_directory_says_so(tmp_path: Path) -> None:
    result = cli("replay", "--rules", "rules.yaml", "--events", str(SEED_SAMPLE), "--out", str(tmp_path))
    assert result.returncode == 1 and "is a directory; name a file for the hits" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_line_runs_as_python_m_fraudtools_too() -> None:
    """`python -m chalicelib` (documented) and `python -m fraudtools` (where the tools live) are one CLI."""
    via_tools = subprocess.run([sys.executable, "-m", "fraudtools", "rules", "check", "rules.yaml"], cwd=PROJECT,
                               capture_output=True, text=True, timeout=120)
    via_engine = cli("rules", "check", "rules.yaml")
    assert via_tools.returncode == 0 == via_engine.returncode, via_tools.stderr + via_engine.stderr
    assert via_tools.stdout == via_engine.stdout
    assert "rules.yaml" in via_tools.stdout
