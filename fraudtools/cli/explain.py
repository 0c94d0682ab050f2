"""`explain --rules FILE --event JSON [--history FILE]`: why each rule did or did not fire on one event.

The history (events that arrived before, one per line, any format `replay` reads) and then the
event go through the real pipeline on throw-away embedded stores; for every enabled rule the
command prints the window bounds, the aggregate, the threshold, the contributing events and the
verdict. For a rule that fired, aggregate, threshold and evidence are the hit's own.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chalicelib.events import Transaction
from chalicelib.explanation import RuleExplanation, as_judged, explain_event
from chalicelib.rules import RuleSet
from fraudtools.record_files import LineFormat, LongLine, bounded_lines, records_from_lines


def explain(ruleset: RuleSet, event_text: str, history_lines: Sequence[bytes | str | LongLine], *,
            line_format: LineFormat = "auto") -> tuple[Transaction, list[RuleExplanation], list[str]]:
    """(the event as decoded, one explanation per enabled rule, problems with the input records)."""
    from fraudtools.cli.scratch import scratch_run, stream_records

    history = list(records_from_lines(history_lines, line_format))
    (event_record,) = stream_records([event_text.encode()], first_sequence=len(history_lines) + 1)
    with scratch_run(ruleset) as run:
        earlier = run.deliver(history) if history else []
        judged = run.deliver([event_record])
        if not judged:
            raise ValueError(f"the event is not a valid record: {run.poison[-1]}")
        seen = as_judged(earlier, judged[0])  # a repeated id: the first delivery wins
        hits = {h.rule_id: h for h in run.hits if h.event_id == seen.event.event_id}
        problems = list(run.poison)
        observed_since = run.pipeline.observed_since()
    if seen.redelivered:
        problems.append(f"event {seen.event.event_id} is already in the history: a redelivery is not judged "
                        "again, so its first delivery there is explained")
    return seen.event, explain_event(ruleset, seen.event, seen.earlier, hits, observed_since=observed_since), problems


def cmd_explain(args: argparse.Namespace) -> int:
    from fraudtools.cli.runner import load_rules_or_exit

    ruleset = load_rules_or_exit(args.rules)
    try:
        event_text = _utf8_text(Path(args.event[1:])) if args.event.startswith("@") else args.event
        history_lines = _history_lines(args.history) if args.history else []
    except OSError as exc:
        print(f"error: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        event, explanations, problems = explain(ruleset, event_text.strip(), history_lines, line_format=args.format)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps({"event": event.model_dump(mode="json"), "ruleset_version": ruleset.version,
                          "rules": [x.to_dict() for x in explanations]}, indent=1, default=str))
        return 0
    print(f"event {event.event_id} at {event.ts.isoformat()} (account {event.account_id}), rules version "
          f"{ruleset.version}")
    for x in explanations:
        print(render(x))
    return 0


def _utf8_text(path: Path) -> str:
    data = path.read_bytes()
    _check_utf8(path, data)
    return data.decode("utf-8")


def _history_lines(path: Path) -> list[bytes | LongLine]:
    """The history file's lines as bytes; a line over the line limit is refused as a record (as in
    `replay`) while it is read, never held whole; a line that is not UTF-8 text is an error."""
    with path.open("rb") as handle:
        lines = list(bounded_lines(handle))
    for number, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            _check_utf8(path, line, first_line=number)
    return lines


def _check_utf8(path: Path, data: bytes, *, first_line: int = 1) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        raise ValueError(f"{path}: line {line} is not UTF-8 text (byte {data[exc.start]:#04x}); "
                         "save the file as UTF-8") from None


def render(x: RuleExplanation) -> str:
    lines = [f"{x.verdict.upper():<10} {x.rule_id} ({x.kind}, {x.mode})"]
    if x.key_value is not None:
        lines.append(f"    key {x.key_field} = {x.key_value}")
    if x.window_start is not None:
        held = "" if x.contributing_count is None else f": {x.contributing_count} events"
        lines.append(f"    window ({x.window_start}, {x.window_end}]{held}"
                     + (f" {', '.join(x.contributing)}" if x.contributing else ""))
    if x.aggregate is not None or x.threshold is not None:
        lines.append(f"    aggregate {_show(x.aggregate)} vs threshold {_show(x.threshold)}")
    if x.reason:
        lines.append(f"    {x.reason}")
    if x.evidence:
        lines.append(f"    evidence {json.dumps(x.evidence, default=str)}")
    return "\n".join(lines)


def _show(value: Any) -> str:
    return "n/a" if value is None else str(value)
