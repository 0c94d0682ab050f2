"""Careless input to the commands is one line on stderr and a non-zero exit, never a traceback;
`backtest` says how much of its input it read, accepted and refused, and fails when nothing was
accepted (issue 18 items 5 and 6)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fraudtools.cli import main
from tests.conftest import PROJECT

RULES = "version: 1\nrules:\n  - {id: busy-2m, kind: velocity, key: account_id, window: 2m, threshold: 1}\n"
EVENTS = [{"event_id": f"a{n}", "account_id": "a", "amount": 10, "ts": f"2026-11-01T12:0{n}:00Z"} for n in range(3)]
EVENT = json.dumps({"event_id": "x", "account_id": "a", "amount": 5, "ts": "2026-11-01T12:05:00Z"})
NUL_RULES = PROJECT / "tests" / "fixtures" / "hostile-rules" / "control-nul-byte.yaml"
BEL_RULES = PROJECT / "tests" / "fixtures" / "hostile-rules" / "control-bel-byte.yaml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chalicelib", *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=120)


def assert_one_line_error(done: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "unexpected error" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and fragment in errors[0], done.stderr


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return path


@pytest.mark.parametrize("labels", ["[1, 2, 3]", '{"events": null}', '{"events": {"a1": "x"}, "accounts": [1]}',
                                    '{"events": {"a1": 7}, "accounts": {}}', "[" * 100_000])
def test_backtest_labels_of_the_wrong_shape(tmp_path: Path, rules: Path, events: Path, labels: str) -> None:
    path = tmp_path / "labels.json"
    path.write_text(labels)
    done = run("backtest", "--rules", str(rules), "--events", str(events), "--labels", str(path), "--no-graph")
    assert_one_line_error(done, f"{path} is not a labels file written by `simulate`")


def test_explain_history_that_is_not_utf8(tmp_path: Path, rules: Path, events: Path) -> None:
    history = tmp_path / "history.jsonl"
    history.write_bytes(events.read_bytes() + b'{"event_id": "\xff\xfe"}\n')
    done = run("explain", "--rules", str(rules), "--event", EVENT, "--history", str(history))
    assert_one_line_error(done, f"{history}: line 4 is not UTF-8 text (byte 0xff)")


def test_explain_event_file_that_is_not_utf8(tmp_path: Path, rules: Path) -> None:
    event = tmp_path / "event.json"
    event.write_bytes(b'{"event_id": "\xc3"}')
    done = run("explain", "--rules", str(rules), "--event", f"@{event}")
    assert_one_line_error(done, f"{event}: line 1 is not UTF-8 text")


@pytest.mark.parametrize(("path", "line", "byte"), [(NUL_RULES, 4, "#x00"), (BEL_RULES, 6, "#x07")])
@pytest.mark.parametrize("command", [["rules", "check"], ["rules", "test"], ["explain", "--event", EVENT, "--rules"]])
def test_a_control_byte_in_rules_is_a_located_error(command: list[str], path: Path, line: int, byte: str) -> None:
    done = run(*command, str(path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "unexpected error" not in done.stderr, done.stderr
    assert f"{path}:{line}: not valid YAML: control character {byte}" in done.stderr, done.stderr


# --------------------------------------------------------------------------- backtest counts its input


def backtest(capsys: pytest.CaptureFixture[str], rules: Path, events: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["backtest", "--rules", str(rules), "--events", str(events), "--no-graph", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_backtest_says_what_it_read_accepted_and_refused(tmp_path: Path, rules: Path, events: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(events.read_text() + "not json\n" + json.dumps(EVENTS[0]) + "\n")
    code, out, _ = backtest(capsys, rules, mixed)
    assert code == 0
    assert f"events: 5 read from {mixed}, 3 accepted, 1 duplicates, 1 refused" in out
    assert "    refused record 000000000000000000004: record is not JSON" in out
    assert "busy-2m                      hits 0 -> 2: +2 added, -0 removed" in out


@pytest.mark.parametrize(("content", "options", "summary"), [
    ("", [], "events: 0 read from {path}, 0 accepted, 0 refused"),
    ("not json\n[1]\n{\"account_id\": 5}\n\n", [], "events: 3 read from {path}, 0 accepted, 3 refused"),
    ("".join(json.dumps(e) + "\n" for e in EVENTS), ["--format", "kinesis"],
     "events: 3 read from {path}, 0 accepted, 3 refused"),
])
def test_backtest_fails_when_nothing_was_accepted(tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str],
                                                  content: str, options: list[str], summary: str) -> None:
    path = tmp_path / "input.jsonl"
    path.write_text(content)
    code, out, err = backtest(capsys, rules, path, *options)
    assert code == 1
    assert summary.format(path=path) in out
    assert "hits 0 -> 0" not in out
    assert f"error: no event of {path} was accepted" in err
    if options:
        assert "not a Kinesis envelope" in out and "use --format native or auto" in out


def test_backtest_json_counts_and_fails_when_nothing_was_accepted(tmp_path: Path, rules: Path, events: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = backtest(capsys, rules, events, "--json")
    report = json.loads(out)
    assert code == 0 and (report["read"], report["accepted"], report["refused"]) == (3, 3, 0)
    code, out, err = backtest(capsys, rules, events, "--json", "--format", "kinesis")
    report = json.loads(out)
    assert code == 1 and (report["read"], report["accepted"], report["refused"]) == (3, 0, 3)
    assert "error: no event" in err
