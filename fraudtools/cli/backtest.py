"""`backtest --rules NEW.yaml [--baseline OLD.yaml] --events FILE [--labels FILE] [--json]`.

Replays the events through each ruleset on its own throw-away embedded stores, in Kinesis-shaped
batches through the same pipeline as production, so every event is judged point-in-time: only
with what arrived before it. Prints, per rule, the hits the new ruleset adds and removes
against the baseline (with a few example events); with labels (`simulate`'s labels.json), the
precision / recall / F1 per rule and overall, before and after, where recall counts every
labelled event a rule missed as a false negative. Without `--baseline` the baseline is an empty
ruleset (every hit is "added").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.hits import Hit
from chalicelib.rules import RuleSet
from fraudtools.record_files import FileItem, batched, records_from_lines
from fraudtools.scoring import Score

EXAMPLES_SHOWN = 3
OVERALL = "(any enforce rule)"


@dataclass
class RulesetRun:
    ruleset: RuleSet | None
    hits: dict[tuple[str, str], Hit] = field(default_factory=dict)  # (rule_id, event_id) -> hit
    poison: int = 0
    read: int = 0  # records (non-blank lines) read
    accepted: int = 0  # events stored and judged
    duplicates: int = 0  # records whose event id came before
    refusals: list[str] = field(default_factory=list)  # why each refused record was refused

    def events_of(self, rule_id: str) -> set[str]:
        return {event_id for (rid, event_id) in self.hits if rid == rule_id}


def replay(ruleset: RuleSet, records: Sequence[FileItem], *, batch_size: int = 100, graph: bool = True,
           on_batch: Callable[[int], None] = lambda n: None) -> RulesetRun:
    from fraudtools.cli.scratch import scratch_run

    run = RulesetRun(ruleset)
    with scratch_run(ruleset, graph=graph) as scratch:
        for batch in batched(records, batch_size):
            scratch.deliver(batch)
            on_batch(len(batch))
        run.hits = {(h.rule_id, h.event_id): h for h in scratch.hits}
        run.poison = len(scratch.poison)
        run.read, run.accepted, run.duplicates = len(records), scratch.accepted, scratch.duplicates
        run.refusals = list(scratch.poison)
    return run


@dataclass(frozen=True)
class RuleDiff:
    rule_id: str
    baseline_hits: int
    new_hits: int
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    added_count: int
    removed_count: int
    scores: dict[str, dict[str, Any]] | None = None  # "before" / "after"


def _example(hit: Hit) -> dict[str, Any]:
    return {"event_id": hit.event_id, "ts": hit.ts, "account_id": hit.account_id, "value": hit.value,
            "threshold": hit.threshold}


def score(events: set[str], labels: Mapping[str, str]) -> Score:
    """TP = detected labelled events, FP = detected unlabelled ones, positives = every labelled event."""
    tp = len(events & labels.keys())
    return Score(tp, len(events) - tp, len(labels))


def diff(baseline: RulesetRun, new: RulesetRun, labels: Mapping[str, str] | None = None) -> list[RuleDiff]:
    """Per rule of either ruleset (new ruleset's order first), then overall (enforce hits of any rule)."""
    order: dict[str, None] = {}
    for run in (new, baseline):
        for config in run.ruleset.configs if run.ruleset else ():
            order.setdefault(config.id, None)
    out = []
    for rule_id in [*order, OVERALL]:
        if rule_id == OVERALL:
            before = {e for (r, e), h in baseline.hits.items() if h.mode == "enforce"}
            after = {e for (r, e), h in new.hits.items() if h.mode == "enforce"}
            pick_new = {e: h for (r, e), h in new.hits.items() if h.mode == "enforce"}
            pick_old = {e: h for (r, e), h in baseline.hits.items() if h.mode == "enforce"}
        else:
            before, after = baseline.events_of(rule_id), new.events_of(rule_id)
            pick_new = {e: h for (r, e), h in new.hits.items() if r == rule_id}
            pick_old = {e: h for (r, e), h in baseline.hits.items() if r == rule_id}
        added, removed = sorted(after - before, key=lambda e: pick_new[e].ts), sorted(before - after,
                                                                                      key=lambda e: pick_old[e].ts)
        scores = None
        if labels is not None:
            scores = {"before": score(before, labels).to_dict(), "after": score(after, labels).to_dict()}
        out.append(RuleDiff(rule_id, len(before), len(after), [_example(pick_new[e]) for e in added[:EXAMPLES_SHOWN]],
                            [_example(pick_old[e]) for e in removed[:EXAMPLES_SHOWN]], len(added), len(removed),
                            scores))
    return out


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def print_diff(diffs: Sequence[RuleDiff], *, new: Path, baseline: Path | None) -> None:
    print(f"backtest: {new} against {baseline or 'no baseline (every hit is added)'}")
    for d in diffs:
        print(f"{d.rule_id:<28} hits {d.baseline_hits} -> {d.new_hits}: +{d.added_count} added, "
              f"-{d.removed_count} removed")
        for sign, examples in (("+", d.added), ("-", d.removed)):
            for x in examples:
                print(f"    {sign} {x['event_id']} at {x['ts']} account {x['account_id']}: "
                      f"{x['value']} > {x['threshold']}")
        if d.scores is not None:
            b, a = d.scores["before"], d.scores["after"]
            print(f"    precision {_pct(b['precision'])} -> {_pct(a['precision'])}, recall {_pct(b['recall'])} -> "
                  f"{_pct(a['recall'])}, F1 {_pct(b['f1'])} -> {_pct(a['f1'])} (TP {b['tp']} -> {a['tp']}, "
                  f"FP {b['fp']} -> {a['fp']}, labelled {a['positives']})")


def cmd_backtest(args: argparse.Namespace) -> int:
    from fraudtools.cli.runner import load_rules_or_exit, progress_bar

    new_rules = load_rules_or_exit(args.rules)
    old_rules = load_rules_or_exit(args.baseline) if args.baseline else None
    try:
        with args.events.open("rb") as handle:
            records = list(records_from_lines(handle, args.format))
    except OSError as exc:
        print(f"error: cannot read events file {args.events}: {exc}", file=sys.stderr)
        return 1
    labels = None
    if args.labels:
        from fraudtools.simulate import load_labels

        try:
            labels, _ = load_labels(args.labels)
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {args.labels} is not a labels file written by `simulate`: {exc}", file=sys.stderr)
            return 1
    # The graph store dominates replay time: use it only when a ruleset has graph rules.
    graph = not args.no_graph and any(r is not None and (r.graph_rules(1) or r.graph_rules(2))
                                       for r in (old_rules, new_rules))
    runs = []
    for name, ruleset in (("baseline", old_rules), ("new", new_rules)):
        if ruleset is None:
            runs.append(RulesetRun(None))
            continue
        with progress_bar(len(records), f"backtest: {name} rules") as advance:
            runs.append(replay(ruleset, records, batch_size=args.batch_size, graph=graph, on_batch=advance))
    diffs = diff(runs[0], runs[1], labels)
    judged = runs[1]
    if args.json:
        print(json.dumps({"rules": str(args.rules), "baseline": str(args.baseline) if args.baseline else None,
                          "events": len(records), "read": judged.read, "accepted": judged.accepted,
                          "duplicates": judged.duplicates, "refused": judged.poison, "poison": judged.poison,
                          "refusals": judged.refusals[:EXAMPLES_SHOWN],
                          "diff": [d.__dict__ for d in diffs]}, indent=1, default=str))
    else:
        print(input_summary(args.events, judged))
        for reason in judged.refusals[:EXAMPLES_SHOWN]:
            print(f"    refused {reason}")
        if len(judged.refusals) > EXAMPLES_SHOWN:
            print(f"    ... and {len(judged.refusals) - EXAMPLES_SHOWN} more refused")
        if judged.accepted:
            print_diff(diffs, new=args.rules, baseline=args.baseline)
    if not judged.accepted:
        hint = "it is empty" if not judged.read else "check --format and the refusals above"
        print(f"error: no event of {args.events} was accepted, so there is nothing to compare: {hint}",
              file=sys.stderr)
        return 1
    return 0


def input_summary(events: Path, run: RulesetRun) -> str:
    duplicates = f", {run.duplicates} duplicates" if run.duplicates else ""
    return (f"events: {run.read} read from {events}, {run.accepted} accepted{duplicates}, "
            f"{run.poison} refused")
