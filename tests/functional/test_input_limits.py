"""Limits on what a user's files can make the commands read (issue 18, item 9): a records line over
the line limit is refused as it is read, never held whole; a list `file:` and an examples `file:`
are plain names next to the rules file, under the rules file's size cap and YAML bounds."""

from __future__ import annotations

import json
import os
import textwrap
import tracemalloc
from pathlib import Path

import pytest

from chalicelib.rules import RulesFileError, limits, load_rules_file, load_rules_text
from fraudtools.cli import main
from fraudtools.cli.rules_test import run_all_examples
from fraudtools.record_files import MAX_LINE_BYTES, RefusedLine, StreamRecord, records_from_lines

RULES = "version: 1\nrules:\n  - {id: busy, kind: velocity, window: 10m, threshold: 1}\n"


def event(event_id: str, minute: int) -> bytes:
    return json.dumps({"event_id": event_id, "account_id": "a", "amount": 5,
                       "ts": f"2026-11-01T12:{minute:02d}:00Z"}).encode()


def file_with_a_long_line(path: Path, megabytes: int) -> Path:
    """Two events around one `megabytes`-long line, written in chunks."""
    with path.open("wb") as handle:
        handle.write(event("a1", 0) + b"\n")
        handle.write(b'{"event_id": "big", "account_id": "a", "amount": 5, "pad": "')
        for _ in range(megabytes):
            handle.write(b"p" * (1 << 20))
        handle.write(b'"}\n' + event("a2", 1) + b"\n")
    return path


def test_a_line_over_the_limit_is_refused_as_it_is_read(tmp_path: Path) -> None:
    path = file_with_a_long_line(tmp_path / "events.jsonl", 24)
    tracemalloc.start()
    try:
        with path.open("rb") as handle:
            items = list(records_from_lines(handle))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"{peak:,} bytes held for a 24 MiB line"  # the line was never held whole
    first, refused, last = items
    assert isinstance(first, StreamRecord) and isinstance(last, StreamRecord)
    assert last.sequence_number == f"{3:021d}"  # line numbers stay the physical ones
    assert isinstance(refused, RefusedLine) and refused.sequence_number == f"{2:021d}"
    assert f"line 2 is {24 * 2**20 + 62:,} bytes long, over the limit of {MAX_LINE_BYTES:,}" in refused.reason
    assert refused.data == path.read_bytes()[len(event("a1", 0)) + 1:][:MAX_LINE_BYTES]


@pytest.mark.parametrize(("length", "ending", "refused"), [
    (MAX_LINE_BYTES, b"\n", False), (MAX_LINE_BYTES, b"", False), (MAX_LINE_BYTES - 1, b"\r\n", False),
    (MAX_LINE_BYTES + 1, b"\n", True), (MAX_LINE_BYTES + 1, b"", True)])
def test_the_line_limit_is_exact(length: int, ending: bytes, refused: bool, tmp_path: Path) -> None:
    line = event("x", 0)
    line = line[:-1] + b" " * (length - len(line)) + b"}"
    path = tmp_path / "events.jsonl"
    path.write_bytes(event("y", 1) + b"\n" + line + ending)  # b"": the file's last line, unterminated
    with path.open("rb") as handle:
        items = list(records_from_lines(handle))
    assert [isinstance(item, RefusedLine) for item in items] == [False, refused]
    if not refused:
        assert items[1].data == line


def test_replay_dead_letters_a_long_line_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = file_with_a_long_line(tmp_path / "events.jsonl", 3)
    (tmp_path / "rules.yaml").write_text(RULES)
    assert main(["replay", "--rules", str(tmp_path / "rules.yaml"), "--events", str(events),
                 "--out", str(tmp_path / "hits.jsonl")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["accepted"], summary["poison"], summary["hits"]) == (2, 1, {"busy": 1})
    [letter] = [json.loads(line) for line in (tmp_path / "hits.dead-letters.jsonl").read_text().splitlines()]
    assert "over the limit of 65,536 for a line" in letter["reason"] and letter["sequence_number"].endswith("2")


def test_backtest_and_explain_refuse_a_long_line_without_holding_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = file_with_a_long_line(tmp_path / "events.jsonl", 48)
    (tmp_path / "rules.yaml").write_text(RULES)
    tracemalloc.start()
    try:
        backtest = main(["backtest", "--rules", str(tmp_path / "rules.yaml"), "--events", str(events), "--json"])
        report = json.loads(capsys.readouterr().out)
        explain = main(["explain", "--rules", str(tmp_path / "rules.yaml"), "--history", str(events), "--event",
                        event("e", 2).decode(), "--json"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    captured = capsys.readouterr()
    assert peak < 24 * 2**20, f"{peak:,} bytes held for a 48 MiB line"  # reading it whole takes 48 MiB+
    assert backtest == 0 and report["poison"] == 1
    assert next(d for d in report["diff"] if d["rule_id"] == "busy")["new_hits"] == 1
    assert explain == 0
    busy = json.loads(captured.out)["rules"][0]
    assert (busy["contributing"], busy["verdict"]) == (["a1", "a2", "e"], "fires")
    assert "line 2 is 50,331,710 bytes long, over the limit of 65,536 for a line" in captured.err


# --------------------------------------------------------------------------- list files


def rules_with_list(tmp_path: Path, file: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(f"""\
        version: 1
        lists:
          bad: {{file: {json.dumps(file)}}}
        rules:
          - {{id: blocked, kind: list_match, field: ip, list: bad}}
        """))
    return path


@pytest.mark.parametrize("name", ["/etc/shadow", "/etc/passwd", "../outside.txt", "sub/bad-ips.txt", ".hidden",
                                  "..", "bad ips.txt", "C:\\lists\\bad.txt"])
def test_a_list_file_is_a_plain_name_next_to_the_rules_file(name: str, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("203.0.113.7\n")
    rules_dir = tmp_path / "rules"
    (rules_dir / "sub").mkdir(parents=True)
    (rules_dir / "sub" / "bad-ips.txt").write_text("203.0.113.7\n")
    with pytest.raises(RulesFileError) as refused:
        load_rules_file(rules_with_list(rules_dir, name))
    [issue] = refused.value.issues
    assert (issue.line, issue.field) == (3, "lists.bad.file")  # refused before anything is read
    assert "must be a plain file name next to the rules file" in str(issue)


def test_a_list_file_may_not_be_a_link_out_of_the_directory_or_a_device(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("s3cr3t\n")
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    os.symlink(tmp_path / "secret.txt", rules_dir / "bad-ips.txt")
    os.symlink("/dev/zero", rules_dir / "zeros.txt")
    for name, why in (("bad-ips.txt", "is a link out of the rules file's directory"),
                      ("zeros.txt", "is a link out of the rules file's directory")):
        with pytest.raises(RulesFileError, match=why):
            load_rules_file(rules_with_list(rules_dir, name))
    (rules_dir / "sub").mkdir()
    with pytest.raises(RulesFileError, match="is not a regular file"):
        load_rules_file(rules_with_list(rules_dir, "sub"))


def test_a_list_file_has_the_rules_files_size_cap(tmp_path: Path) -> None:
    assert limits.MAX_LIST_FILE_BYTES == limits.MAX_FILE_BYTES == 2**20
    with (tmp_path / "ips.txt").open("w") as handle:
        handle.write("".join(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}\n" for i in range(100_000)))  # ~1.3 MB
    with pytest.raises(RulesFileError, match=f"list file is larger than {2**20} bytes"):
        load_rules_file(rules_with_list(tmp_path, "ips.txt"))


def test_a_list_file_needs_a_rules_file_on_disk() -> None:
    with pytest.raises(RulesFileError, match="give the list inline as values:"):
        load_rules_text("version: 1\nlists:\n  bad: {file: bad-ips.txt}\nrules: []\n", name="s3://b/rules.yaml")


# --------------------------------------------------------------------------- examples files


def rules_with_examples_file(tmp_path: Path, content: bytes) -> Path:
    (tmp_path / "more.yaml").write_bytes(content)
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nrules:\n  - id: busy\n    kind: velocity\n    window: 10m\n    threshold: 1\n"
                    "    examples:\n      - file: more.yaml\n")
    return path


def test_an_examples_file_over_the_size_cap_is_refused_unread(tmp_path: Path) -> None:
    example = b'- {fires: false, event: {ts: "2026-11-01T12:00:00Z"}, name: "' + b"n" * 60 + b'"}\n'
    path = rules_with_examples_file(tmp_path, example * (2**20 // len(example) + 1))
    [outcome] = run_all_examples(load_rules_file(path), tmp_path)
    assert not outcome.passed
    assert outcome.error == f"cannot use examples file {tmp_path / 'more.yaml'}: examples file is larger than " \
                            f"{2**20} bytes"


def test_an_examples_file_is_bounded_yaml(tmp_path: Path) -> None:
    bomb = b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n".encode()
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    [outcome] = run_all_examples(load_rules_file(rules_with_examples_file(tmp_path, bomb)), tmp_path)
    assert outcome.error is not None and "refused: more than 200000 values" in outcome.error


def test_an_examples_file_may_not_be_a_link_out_of_the_directory(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (tmp_path / "elsewhere.yaml").write_text('- {fires: true, event: {ts: "2026-11-01T12:00:00Z"}}\n')
    path = rules_with_examples_file(rules_dir, b"")
    (rules_dir / "more.yaml").unlink()
    os.symlink(tmp_path / "elsewhere.yaml", rules_dir / "more.yaml")
    [outcome] = run_all_examples(load_rules_file(path), rules_dir)
    assert outcome.error is not None and "is a link out of the rules file's directory" in outcome.error
