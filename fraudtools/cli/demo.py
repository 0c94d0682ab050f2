"""`demo`: simulate, replay through the real handler, evaluate, and write the HTML report."""

from __future__ import annotations

import argparse
import json
from typing import Any

from chalicelib.entities import DEFAULT_VIA
from chalicelib.rules import RuleSet
from fraudtools.cli.graph import open_graph
from fraudtools.cli.results import print_evaluation, simulate_and_run
from fraudtools.cli.runner import load_rules_or_exit


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from fraudtools.report import html_report

    ruleset = load_rules_or_exit(args.rules)  # fail early, with the file's problems, before simulating
    console = Console(width=max(120, Console().width))
    run = simulate_and_run(rules=args.rules, seed=args.seed, accounts=args.accounts, days=args.days,
                           batch_size=args.batch_size, data_dir=args.data_dir, console=console,
                           lead_in_days=args.lead_in_days)
    stream, totals, hits, evaluation = run.stream, run.totals, run.hits, run.evaluation
    print_evaluation(evaluation)
    for note in warm_up_notes(ruleset, args.lead_in_days, args.days):
        console.print(note)

    graph = open_graph(args.data_dir)
    try:
        rings = graph.rings(list(DEFAULT_VIA), min_size=3, max_accounts_per_identifier=50)
        counts = graph.counts()
    finally:
        graph.close()
    ring = None
    ring_hits: list[dict[str, Any]] = []
    if rings:
        top = rings[0]
        ring = (top.accounts, [(i.label, i.key, list(i.accounts)) for i in top.identifiers[:8]])
        ring_hits = [h for h in hits if h["account_id"] in set(top.accounts) and h["mode"] == "enforce"]
        labels = sorted({stream.account_labels.get(a, "normal") for a in top.accounts})
        console.print(f"largest ring: {len(top.accounts)} accounts ({', '.join(top.accounts[:6])}"
                      f"{' ...' if len(top.accounts) > 6 else ''}) linked by "
                      + "; ".join(f"{i.label} {i.key} ({len(i.accounts)})" for i in top.identifiers[:3])
                      + f"; labelled {', '.join(labels)}; {len(ring_hits)} enforce hit edges on its accounts")
    console.print(f"graph: {counts['vertices']} vertices, {counts['edges']} edges ({len(hits)} hit edges)")
    report_path = args.data_dir / "report.html"
    report_path.write_text(html_report(
        title="Fraud rules demo: micro + macro on a simulated stream",
        summary={"events": totals.events, "accounts": args.accounts, "days": args.days, "seed": args.seed,
                 "fraud events": len(stream.labels), "hits": len(hits),
                 "throughput": f"{totals.events / max(totals.seconds, 1e-9):,.0f} events/s through the handler",
                 "graph": f"{counts['vertices']} vertices, {counts['edges']} edges"},
        evaluation=evaluation, hits=hits, ring=ring, ring_hits=ring_hits, rules_file=str(args.rules)))
    console.print(f"HTML report: {report_path}; stores in {args.data_dir}/ - investigate with "
                  f"`python -m chalicelib serve --data-dir {args.data_dir}` (a web page on 127.0.0.1:8000) "
                  f"or `python -m chalicelib graph rings --data-dir {args.data_dir}`")
    print(json.dumps(totals.summary()))
    return 0


def warm_up_notes(ruleset: RuleSet, lead_in_days: float, days: float) -> list[str]:
    """What a reader of the demo's figures must know: which rules that wait until the store has
    watched their whole window (`needs_full_history`) were silent for part or all of the run."""
    notes = []
    for rule in ruleset.micro_rules:
        if not rule.needs_full_history or rule.window is None:
            continue
        window_days = rule.window.ms / _DAY_MS
        if window_days <= lead_in_days:
            continue
        silent = "the whole run" if window_days >= lead_in_days + days else \
            f"its first {window_days - lead_in_days:g} of {days:g} days"
        notes.append(f"warming up: {rule.id} judges an event only once the store has watched its whole "
                     f"{window_days:g}-day window, so it was silent for {silent} (lead-in {lead_in_days:g} days); "
                     f"`demo --lead-in-days {window_days:g}` shows it at work")
    return notes


_DAY_MS = 86_400_000
