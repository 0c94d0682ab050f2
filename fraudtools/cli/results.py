"""`simulate`, `evaluate` and `results`: a labelled stream, its scores, the held-out results."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fraudtools.cli.runner import InputFileError, RunTotals, load_rules_or_exit, read_input_text, run_through_handler
from fraudtools.record_files import (
    records_from_lines,
)
from fraudtools.results_markdown import write_results_markdown
from fraudtools.scoring import Evaluation
from fraudtools.simulate import LEAD_IN_PREFIX


def cmd_simulate(args: argparse.Namespace) -> int:
    from fraudtools.simulate import simulate

    stream = simulate(seed=args.seed, accounts=args.accounts, days=args.days, lead_in_days=args.lead_in_days)
    events, labels = args.out_dir / "events.jsonl", args.out_dir / "labels.json"
    stream.write(events, labels, fmt=args.format)
    scenarios = Counter(stream.labels.values())
    print(f"{len(stream.events)} events of {args.accounts} accounts over {args.days:g} days, seed {args.seed}: "
          f"{sum(scenarios.values())} fraud events in {len(scenarios)} scenarios "
          f"({', '.join(f'{k} {v}' for k, v in sorted(scenarios.items()))})")
    if stream.lead_in_events:
        print(f"the first {stream.lead_in_events} events are the {args.lead_in_days:g}-day lead-in (unlabelled, "
              "not scored by evaluate)")
    print(f"events: {events} ({args.format}); labels: {labels}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fraudtools.scoring import evaluate_hits

    try:
        event_labels, account_labels = read_labels(args.labels)
        hits = scored_hits(read_hits(args.hits), lead_in_prefix(args.labels))
    except InputFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    evaluation = evaluate_hits(hits, event_labels, account_labels)
    if args.json:
        print(json.dumps(evaluation.to_dict(), indent=1))
    else:
        print_evaluation(evaluation)
    if args.markdown:
        write_results_markdown(args.markdown, evaluation, rules=args.rules, command=" ".join(sys.argv[1:]))
        print(f"wrote {args.markdown}", file=sys.stderr)
    return 0


LABELS_HINT = "--labels takes the labels.json that `python -m chalicelib simulate --out-dir DIR` writes"


HITS_HINT = "--hits takes the JSON lines that `python -m chalicelib replay ... --out FILE` writes"


def read_labels(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    from fraudtools.scoring import InputShapeError, labels_from_document

    try:
        return labels_from_document(json.loads(read_input_text(path, LABELS_HINT)))
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path} is not a labels file: not JSON ({exc}); {LABELS_HINT}") from None
    except InputShapeError as exc:
        raise InputFileError(f"{path} is not a labels file: {exc}; {LABELS_HINT}") from None


def lead_in_prefix(path: Path) -> str | None:
    """The event-id prefix of a simulated lead-in named by a labels file (None: it has none)."""
    lead_in = json.loads(read_input_text(path, LABELS_HINT)).get("lead_in")
    prefix = lead_in.get("event_id_prefix") if isinstance(lead_in, dict) else None
    return prefix if isinstance(prefix, str) and prefix else None


def scored_hits(hits: list[dict[str, Any]], lead_in: str | None) -> list[dict[str, Any]]:
    """The hits evaluation scores: those on the evaluated period's events, not on the lead-in's
    (history the stores watched before it; its fraud-free days would otherwise make an account
    "flagged" before its fraud began)."""
    return hits if lead_in is None else [h for h in hits if not str(h["event_id"]).startswith(lead_in)]


def read_hits(path: Path) -> list[dict[str, Any]]:
    from fraudtools.scoring import InputShapeError, check_hit

    hits = []
    for number, line in enumerate(read_input_text(path, HITS_HINT).split("\n"), 1):
        if not line.strip():
            continue
        try:
            hits.append(check_hit(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise InputFileError(f"{path}:{number} is not a JSON line ({exc}); {HITS_HINT}") from None
        except InputShapeError as exc:
            raise InputFileError(f"{path}:{number} is {exc}; {HITS_HINT}") from None
    return hits


def print_evaluation(evaluation: Evaluation) -> None:
    from rich.console import Console
    from rich.table import Table

    from fraudtools.scoring import DETECTORS, LEVELS, OVERALL, reading

    console = Console(width=max(120, Console().width))
    for level in LEVELS:
        table = Table(title=f"{level} level: precision / recall / F1 (enforce hits)")
        table.add_column("scenario")
        table.add_column("n", justify="right")
        for detector in DETECTORS:
            table.add_column(detector, justify="right")
        for scenario in [*evaluation.scenarios, OVERALL]:
            cells = []
            for detector in DETECTORS:
                sc = evaluation.score(level, detector, scenario)
                values = (sc.precision, sc.recall, sc.f1)
                cells.append(" / ".join("–" if v is None else f"{100 * v:.0f}%" for v in values))
            table.add_row(scenario, str(evaluation.score(level, "micro", scenario).positives), *cells,
                          style="bold" if scenario == OVERALL else None)
        console.print(table)
    for line in reading(evaluation):
        console.print(line.replace("**", ""))


@dataclass
class SimulatedRun:
    stream: Any
    totals: RunTotals
    hits: list[dict[str, Any]]
    evaluation: Evaluation
    lead_in_hits: int = 0  # enforce-mode hits on the lead-in's events (not scored)


def simulate_and_run(*, rules: Path, seed: int, accounts: int, days: float, batch_size: int, data_dir: Path,
                     console: Any, lead_in_days: float = 0.0) -> SimulatedRun:
    """Simulate (with `lead_in_days` of history first), stream through the handler on fresh
    embedded stores in `data_dir`, evaluate the hits on the evaluated period's events."""
    from fraudtools.scoring import evaluate_hits
    from fraudtools.simulate import simulate

    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("timeseries.sqlite", "timeseries.sqlite-wal", "timeseries.sqlite-shm", "graph.sqlite",
                  "graph.sqlite-wal", "graph.sqlite-shm", "entity-graph.sqlite", "entity-graph.sqlite-wal",
                  "entity-graph.sqlite-shm", "hits.jsonl", "dead-letters.jsonl"):
        (data_dir / stale).unlink(missing_ok=True)
    stream = simulate(seed=seed, accounts=accounts, days=days, lead_in_days=lead_in_days)
    stream.write(data_dir / "events.jsonl", data_dir / "labels.json")
    console.print(f"simulated {len(stream.events)} events of {accounts} accounts over {days:g} days "
                  f"(seed {seed}) after a {lead_in_days:g}-day lead-in of {stream.lead_in_events} events, "
                  f"{len(stream.labels)} of them fraud in {len(set(stream.labels.values()))} scenarios")
    with (data_dir / "events.jsonl").open("rb") as handle:
        records = list(records_from_lines(handle, "native"))
    totals = run_through_handler(records, rules, data_dir, batch_size, "streaming through the Kinesis handler")
    console.print(f"{totals.events} events in {totals.batches} batches of {batch_size} in {totals.seconds:.1f}s "
                  f"({totals.events / max(totals.seconds, 1e-9):,.0f} events/s): accepted {totals.accepted}, "
                  f"poison {totals.poison}, hits {sum((totals.hits + totals.shadow_hits).values())}")
    every_hit = [json.loads(line) for line in (data_dir / "hits.jsonl").read_text().splitlines() if line]
    hits = scored_hits(every_hit, LEAD_IN_PREFIX.format(seed=seed) if stream.lead_in_events else None)
    lead_in_hits = sum(1 for h in every_hit if h["mode"] == "enforce") - sum(1 for h in hits if h["mode"] == "enforce")
    return SimulatedRun(stream, totals, hits, evaluate_hits(hits, stream.labels, stream.account_labels,
                                                            stream.lookalikes), lead_in_hits)


def cmd_results(args: argparse.Namespace) -> int:
    from rich.console import Console

    from fraudtools.scoring import generalisation_sections

    load_rules_or_exit(args.rules)
    console = Console(width=max(120, Console().width))
    overlap = sorted(set(args.tuning_seeds) & set(args.seeds))
    if overlap:
        print(f"error: seeds {overlap} are both tuning and held-out seeds", file=sys.stderr)
        return 2
    runs = {}
    for seed in [*args.tuning_seeds, *args.seeds]:
        runs[seed] = simulate_and_run(rules=args.rules, seed=seed, accounts=args.accounts, days=args.days,
                                      batch_size=args.batch_size, data_dir=args.data_dir / f"seed-{seed}",
                                      console=console, lead_in_days=args.lead_in_days)
    reference = replay_reference(args.reference, args.rules, args.data_dir / "reference", args.batch_size)
    reference_runs = (replay_reference(args.reference_runs, args.rules, args.data_dir / "reference-runs",
                                       args.batch_size) if args.reference_runs.exists() else None)
    first = runs[args.seeds[0]]
    command = (f"results --tuning-seeds {','.join(map(str, args.tuning_seeds))} "
               f"--seeds {','.join(map(str, args.seeds))} --accounts {args.accounts} --days {args.days:g} "
               f"--lead-in-days {args.lead_in_days:g} --batch-size {args.batch_size}")
    write_results_markdown(args.out, first.evaluation, rules=args.rules, command=command, extra={
        "held-out seed shown in detail": args.seeds[0],
        "events": first.totals.events - first.stream.lead_in_events,
        "fraud events": len(first.stream.labels),
        "lead-in (streamed first, not scored)": f"{args.lead_in_days:g} days, {first.stream.lead_in_events} events, "
                                                f"{first.lead_in_hits} enforce hits"},
        seeds={seed: runs[seed].evaluation for seed in args.seeds},
        sections=generalisation_sections({s: runs[s].evaluation for s in args.tuning_seeds},
                                         {s: runs[s].evaluation for s in args.seeds}, reference, reference_runs))
    print_evaluation(first.evaluation)
    console.print(f"reference producer: {reference}")
    console.print(f"wrote {args.out}")
    return 0


REFERENCE_RING = tuple(f"1234-5678-{n}" for n in range(20, 31))


def replay_reference(path: Path, rules: Path, data_dir: Path, batch_size: int) -> dict[str, Any]:
    """Replay the reference producer's records through the handler; which accounts were flagged
    (enforce hits), ring members (1234-5678-20..30) and others, per detector."""
    from fraudtools.scoring import DETECTORS, detector_of

    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.iterdir():
        if stale.is_file():
            stale.unlink()
    with path.open("rb") as handle:
        records = list(records_from_lines(handle, "auto"))
    run_through_handler(records, rules, data_dir, batch_size, "replaying the reference producer's records")
    hits = [json.loads(line) for line in (data_dir / "hits.jsonl").read_text().splitlines() if line]
    flagged: dict[str, set[str]] = {d: set() for d in DETECTORS}
    for hit in hits:
        if hit["mode"] == "enforce":
            flagged[detector_of(hit["kind"])].add(hit["account_id"])
            flagged["combined"].add(hit["account_id"])
    ring = set(REFERENCE_RING)
    by_detector = {d: {"ring": len(found & ring), "others": sorted(found - ring)} for d, found in flagged.items()}
    by_rule: dict[str, set[str]] = {}
    for hit in hits:
        if hit["mode"] == "enforce":
            by_rule.setdefault(hit["rule_id"], set()).add(hit["account_id"])
    return {"records": len(records), "ring_size": len(ring), "detectors": by_detector,
            "rules": {r: {"ring": len(a & ring), "others": len(a - ring)} for r, a in sorted(by_rule.items())}}
