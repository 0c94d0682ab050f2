"""`replay`: a file of records through the embedded pipeline, hits and dead letters beside the output."""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from chalicelib.collector import BatchCollector
from chalicelib.events import bounded
from chalicelib.stores.jsonl import JsonLinesFile
from fraudtools.cli.runner import (
    RunTotals,
    data_directory,
    embedded_pipeline,
    load_rules_or_exit,
    progress_bar,
    stream_through,
)
from fraudtools.record_files import (
    SHARD_ID,
    FileItem,
    records_from_lines,
)


def cmd_replay(args: argparse.Namespace) -> int:
    ruleset = load_rules_or_exit(args.rules)
    try:
        with args.events.open("rb") as handle:  # bytes: a line that is not UTF-8 is one dead letter
            records = list(records_from_lines(handle, args.format))
    except OSError as exc:
        print(f"error: cannot read events file {args.events}: {exc}", file=sys.stderr)
        return 1
    if args.out.is_dir():
        print(f"error: --out {args.out} is a directory; name a file for the hits, e.g. {args.out / 'hits.jsonl'}",
              file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with data_directory(args.data_dir) as data_dir:
        if args.data_dir is not None:
            # The data dir's sinks hold every hit and dead letter of every run into it (a rerun
            # after a kill resumes there); --out is written from its hit sink at the end.
            hits_path, dead_letters_path = data_dir / "hits.jsonl", data_dir / "dead-letters.jsonl"
        else:
            # The stores are temporary: hits go straight to --out, dead letters beside it.
            hits_path, dead_letters_path = args.out, dead_letters_beside(args.out)
            hits_path.write_text("")
            dead_letters_path.unlink(missing_ok=True)
        pipeline = embedded_pipeline(ruleset, data_dir, hits_path, dead_letters_path)
        # What is built so far (modules, rules, the records) lives for the whole run: frozen, the
        # cyclic collector no longer walks it at every collection the batches' short-lived tuples set off
        gc.freeze()
        # and so is what each batch leaves for the next (window state, the graph's link mirror):
        # this command owns the process, so it decides how the collector runs (chalicelib/collector.py)
        collector = BatchCollector()
        try:
            with progress_bar(len(records), f"replaying {args.events.name}") as advance:
                def on_batch(n: int) -> None:
                    advance(n)
                    collector.after_batch()

                totals = stream_through(pipeline, records, args.batch_size, on_batch)
        finally:
            pipeline.close()
        # Other replays may be appending to the data dir's sink: one snapshot of its complete lines.
        sink_lines = JsonLinesFile(hits_path, "hit_id").snapshot()
        all_hits = sum(1 for line in sink_lines.splitlines() if line.strip())
        if args.data_dir is not None and hits_path.resolve() != args.out.resolve():
            _write_atomically(args.out, sink_lines)
    print(f"rules {args.rules} version {ruleset.version}; {totals.batches} batches of up to "
          f"{args.batch_size} in {totals.seconds:.2f}s ({totals.events / max(totals.seconds, 1e-9):,.0f} events/s)")
    new_hits = sum((totals.hits + totals.shadow_hits).values())
    if args.data_dir is not None:
        print(f"hits: {args.out} holds all {all_hits} hits of {args.data_dir} ({new_hits} new in this run; "
              f"the data dir keeps them in {hits_path})")
    else:
        print(f"hits: {new_hits} in {args.out}")
    print(dead_letter_summary(totals, records, dead_letters_path))
    print(json.dumps(totals.summary(), sort_keys=False))
    return 0


def dead_letters_beside(out: Path) -> Path:
    """Where a replay without --data-dir keeps its dead letters: `hits.jsonl` -> `hits.dead-letters.jsonl`."""
    return out.with_name(f"{out.stem if out.suffix else out.name}.dead-letters.jsonl")


def dead_letter_summary(totals: RunTotals, records: Sequence[FileItem], path: Path) -> str:
    """One plain line on the run's dead letters, naming their file and the most common reasons."""
    if not totals.poison:
        return f"dead letters: none in this run (they would be in {path})"
    run_ids = {f"{SHARD_ID}:{r.sequence_number}" for r in records}
    reasons = Counter(_reason_kind(letter.get("reason", "")) for letter in JsonLinesFile(path, "record_id").read()
                      if letter.get("record_id") in run_ids)
    common = "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common(3))
    if totals.poison >= totals.events:
        head = f"every record was dead-lettered ({totals.poison} of {totals.events}), none accepted"
    else:
        head = f"{totals.poison} of {totals.events} records dead-lettered"
    return f"dead letters: {head}; they are in {path}" + (f"; most common reasons: {common}" if common else "")


def _reason_kind(reason: str) -> str:
    """A reason without its line number and cut short, so the same reason on many lines counts once."""
    return bounded(re.sub(r"^line \d+", "line N", reason), 160)


def _write_atomically(target: Path, data: bytes) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, target)
