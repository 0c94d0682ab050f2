"""The command line: `python -m chalicelib <command> --help`."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.kinesis import LINE_FORMATS, StreamRecord, batched, kinesis_event, records_from_lines
from chalicelib.pipeline import Pipeline
from chalicelib.rules import GraphRule, RulesError, RuleSet, StaticRulesSource, load_rules_file
from chalicelib.stores import (
    GraphStore,
    GremliteConnection,
    JsonLinesDeadLetterSink,
    JsonLinesHitSink,
    SQLiteTimeSeriesStore,
)

MAX_REDELIVERIES = 5


@dataclass
class RunTotals:
    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    poison: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    shadow_hits: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"events": self.events, "accepted": self.accepted, "duplicates": self.duplicates,
                "poison": self.poison, "hits": dict(sorted((self.hits + self.shadow_hits).items()))}


def embedded_pipeline(ruleset: RuleSet, data_dir: Path, hits_path: Path) -> Pipeline:
    return Pipeline(
        StaticRulesSource(ruleset),
        SQLiteTimeSeriesStore(data_dir / "timeseries.sqlite"),
        JsonLinesHitSink(hits_path),
        JsonLinesDeadLetterSink(data_dir / "dead-letters.jsonl"),
        graph=GraphStore(GremliteConnection(data_dir / "graph.sqlite")),
    )


def stream_through(pipeline: Pipeline, records: Sequence[StreamRecord], batch_size: int,
                   on_batch: Callable[[int], None] = lambda n: None) -> RunTotals:
    """Feed records to the pipeline in Kinesis-shaped batches, redelivering from a reported
    failure the way Lambda's event source mapping does."""
    totals = RunTotals()
    started = time.perf_counter()
    for batch in batched(records, batch_size):
        remaining = batch
        for attempt in range(MAX_REDELIVERIES + 1):
            report = pipeline.process_kinesis_event(kinesis_event(remaining))
            totals.accepted += report["accepted"]
            totals.duplicates += report["duplicates"] if attempt == 0 else 0
            totals.poison += report["poison"] if attempt == 0 else 0
            totals.hits.update(report["hits"])
            totals.shadow_hits.update(report["shadow_hits"])
            failures = report["batchItemFailures"]
            if not failures:
                break
            failed_from = failures[0]["itemIdentifier"]
            remaining = [r for r in remaining if int(r.sequence_number) >= int(failed_from)]
            time.sleep(min(2.0, 0.1 * 2**attempt))
        else:
            raise SystemExit(f"error: batch starting at {batch[0].sequence_number} still failing after "
                             f"{MAX_REDELIVERIES} redeliveries: {report['error']}")
        totals.events += len(batch)
        totals.batches += 1
        on_batch(len(batch))
    totals.seconds = time.perf_counter() - started
    return totals


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=True, console=_stderr_console()) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def load_rules_or_exit(path: Path) -> RuleSet:
    try:
        return load_rules_file(path)
    except RulesError as exc:
        print(f"error: {path} is not a valid rules file:\n{exc}", file=sys.stderr)
        raise SystemExit(1) from None


@contextmanager
def data_directory(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    temporary = Path(tempfile.mkdtemp(prefix="fraud-replay-"))
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


# --------------------------------------------------------------------------- commands


def cmd_replay(args: argparse.Namespace) -> int:
    ruleset = load_rules_or_exit(args.rules)
    try:
        with args.events.open(encoding="utf-8") as handle:
            records = list(records_from_lines(handle, args.format))
    except OSError as exc:
        print(f"error: cannot read events file {args.events}: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("")
    with data_directory(args.data_dir) as data_dir:
        pipeline = embedded_pipeline(ruleset, data_dir, args.out)
        try:
            with progress_bar(len(records), f"replaying {args.events.name}") as advance:
                totals = stream_through(pipeline, records, args.batch_size, advance)
        finally:
            pipeline.close()
        print(f"rules {args.rules} version {ruleset.version}; {totals.batches} batches of up to "
              f"{args.batch_size} in {totals.seconds:.2f}s ({totals.events / max(totals.seconds, 1e-9):,.0f} events/s)")
        print(f"hits written to {args.out}" + (f"; dead letters in {data_dir / 'dead-letters.jsonl'}"
                                               if args.data_dir and totals.poison else ""))
    print(json.dumps(totals.summary(), sort_keys=False))
    return 0


def cmd_rules_check(args: argparse.Namespace) -> int:
    ruleset = load_rules_or_exit(args.file)
    print(f"{args.file}: ok, version {ruleset.version}, {len(ruleset.rules)} enabled rules "
          f"of {len(ruleset.configs)}")
    for config in ruleset.configs:
        state = "" if config.enabled else " (disabled)"
        print(f"  {config.id:<24} {getattr(config, 'kind', '?'):<14} {config.mode:<8} {config.severity}{state}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from chalicelib.simulate import iter_lines, simulate

    ruleset = load_rules_or_exit(args.rules)
    stream = simulate(seed=args.seed, accounts=args.accounts, hours=args.hours)
    records = list(records_from_lines(iter_lines(stream), "native"))
    args.data_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("timeseries.sqlite", "timeseries.sqlite-wal", "timeseries.sqlite-shm", "graph.sqlite",
                  "graph.sqlite-wal", "graph.sqlite-shm", "hits.jsonl", "dead-letters.jsonl"):
        (args.data_dir / stale).unlink(missing_ok=True)
    hits_path = args.data_dir / "hits.jsonl"
    pipeline = embedded_pipeline(ruleset, args.data_dir, hits_path)
    try:
        with progress_bar(len(records), "streaming the simulated day") as advance:
            totals = stream_through(pipeline, records, args.batch_size, advance)
    finally:
        pipeline.close()

    hits = [json.loads(line) for line in hits_path.read_text().splitlines() if line]
    by_rule: dict[str, Counter[str]] = {}
    for hit in hits:
        by_rule.setdefault(hit["rule_id"], Counter())[stream.labels.get(hit["event_id"], "normal")] += 1
    console = Console(width=max(110, Console().width))
    table = Table(title=f"Hits by rule (rules version {ruleset.version})")
    for column in ("rule", "mode", "hits", "on fraud", "on normal", "scenarios hit"):
        table.add_column(column, no_wrap=column == "rule")
    for rule in ruleset.rules:
        counts = by_rule.get(rule.id, Counter())
        fraud = sum(n for label, n in counts.items() if label != "normal")
        scenarios = ", ".join(sorted(label for label in counts if label != "normal")) or "-"
        table.add_row(rule.id, rule.config.mode, str(sum(counts.values())), str(fraud),
                      str(counts.get("normal", 0)), scenarios)
    console.print(table)
    caught = {stream.labels[h["event_id"]] for h in hits if h["event_id"] in stream.labels}
    scenarios = sorted(set(stream.labels.values()))
    missed = [s for s in scenarios if s not in caught]
    console.print(f"{totals.events} events in {totals.batches} batches, {totals.seconds:.1f}s "
                  f"({totals.events / max(totals.seconds, 1e-9):,.0f} events/s); "
                  f"{len(hits)} hits; scenarios caught: {len(caught)}/{len(scenarios)}"
                  + (f" (missed: {', '.join(missed)})" if missed else ""))
    graph = open_graph(args.data_dir)
    try:
        rings = graph.rings(["email", "phone", "device_id", "card_id"], min_size=3)
        counts = graph.counts()
    finally:
        graph.close()
    graph_hits = sum(n for rule, n in totals.summary()["hits"].items()
                     if isinstance(ruleset.rule(rule), GraphRule))
    console.print(f"graph: {counts['vertices']} vertices, {counts['edges']} edges "
                  f"({len(hits)} of them hit edges, {graph_hits} from macro rules)")
    if rings:
        ring = rings[0]
        labels = {stream.labels.get(e["event_id"]) for e in stream.events if e["account_id"] in ring.accounts}
        console.print(f"largest ring: {len(ring.accounts)} accounts ({', '.join(ring.accounts[:10])}"
                      f"{' ...' if len(ring.accounts) > 10 else ''}) linked by "
                      + "; ".join(f"{i.label} {i.key} ({len(i.accounts)})" for i in ring.identifiers[:3])
                      + f"; scenarios among its events: {', '.join(sorted(str(x) for x in labels - {None})) or 'none'}")
    console.print(f"stores and hits in {args.data_dir}/ - investigate with "
                  f"`python -m chalicelib graph rings --data-dir {args.data_dir}`")
    print(json.dumps(totals.summary()))
    return 0


def open_graph(data_dir: Path) -> GraphStore:
    path = data_dir / "graph.sqlite"
    if not path.exists():
        raise SystemExit(f"error: no graph at {path}: run `replay --data-dir {data_dir}` or `demo` first, "
                         "or point --data-dir at the directory that holds graph.sqlite")
    return GraphStore(GremliteConnection(path))


def cmd_graph_account(args: argparse.Namespace) -> int:
    graph = open_graph(args.data_dir)
    try:
        view = graph.account_view(args.account, hops=args.hops)
    finally:
        graph.close()
    if args.json:
        print(json.dumps(view, indent=2))
        return 0 if view["found"] else 1
    if not view["found"]:
        print(f"account {args.account!r} is not in the graph at {args.data_dir}", file=sys.stderr)
        return 1
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]Account {view['account']}[/bold]")
    for entity in view["entities"]:
        console.print(f"  -[{entity['relationship']}]-> {entity['label']} {entity['key']}"
                      f"  (first {entity['first_seen']}, last {entity['last_seen']})")
    shared = view["shared_identifiers"]
    if shared:
        console.print(f"Accounts within {args.hops} hop(s) through shared identifiers: {len(view['accounts']) - 1}")
        for ident in shared:
            console.print(f"  {ident['label']} {ident['key']}: {', '.join(ident['accounts'])}")
    own = [h for h in view["hits"] if h["account_id"] == args.account]
    table = Table(title=f"Hits on {args.account} ({len(own)})")
    for column in ("ts", "rule", "mode", "severity", "edge", "value"):
        table.add_column(column, overflow="fold")
    for h in own:
        table.add_row(h["ts"], h["rule_id"], h["mode"], h["severity"],
                      f"-[{h['label']}]-> {h['to_label']} {h['to']}", f"{h['value']:g} > {h['threshold']:g}")
    console.print(table)
    by_neighbour: dict[str, Counter[str]] = {}
    for h in view["hits"]:
        if h["account_id"] != args.account:
            by_neighbour.setdefault(h["account_id"], Counter())[h["rule_id"]] += 1
    for neighbour, counts in sorted(by_neighbour.items()):
        console.print(f"  neighbour {neighbour}: " + ", ".join(f"{r} x{n}" for r, n in sorted(counts.items())))
    return 0


def cmd_graph_rings(args: argparse.Namespace) -> int:
    graph = open_graph(args.data_dir)
    try:
        rings = graph.rings(args.via, args.min_size, args.max_accounts_per_identifier)
    finally:
        graph.close()
    if args.json:
        print(json.dumps([{"accounts": r.accounts, "identifiers": [
            {"label": i.label, "key": i.key, "accounts": list(i.accounts)} for i in r.identifiers]}
            for r in rings], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Rings: accounts linked by shared {', '.join(args.via)} (largest first)")
    for column in ("#", "accounts", "members", "linked by"):
        table.add_column(column, overflow="fold")
    for rank, ring in enumerate(rings[:args.limit], 1):
        links = "; ".join(f"{i.label} {i.key} ({len(i.accounts)})" for i in ring.identifiers[:6])
        more = f" +{len(ring.identifiers) - 6} more" if len(ring.identifiers) > 6 else ""
        table.add_row(str(rank), str(len(ring.accounts)), ", ".join(ring.accounts[:12])
                      + (" ..." if len(ring.accounts) > 12 else ""), links + more)
    Console().print(table)
    print(f"{len(rings)} rings of at least {args.min_size} accounts")
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chalicelib",
                                     description="Fraud detection rules engine: micro + macro rules over Kinesis.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = commands.add_parser("replay", help="run a file of events through the pipeline",
                                 description="Run a file of events through the same pipeline the Lambda "
                                             "handler uses, in Kinesis-shaped batches, on the embedded "
                                             "stores. The last line printed is a JSON summary.")
    replay.add_argument("--rules", type=Path, required=True, help="rules file (rules.yaml)")
    replay.add_argument("--events", type=Path, required=True, help="events, one per line (JSON lines)")
    replay.add_argument("--format", choices=LINE_FORMATS, default="auto",
                        help="line format: native or seed records, kinesis envelopes "
                             "{sequenceNumber, partitionKey, data}, or auto-detect per line (default)")
    replay.add_argument("--batch-size", type=_positive, default=100, help="records per batch (default 100)")
    replay.add_argument("--data-dir", type=Path, help="keep the stores here (default: a temporary directory)")
    replay.add_argument("--out", type=Path, required=True, help="write hits here, one JSON object per line")
    replay.set_defaults(func=cmd_replay)

    rules = commands.add_parser("rules", help="work with rules files")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True, metavar="SUBCOMMAND")
    check = rules_commands.add_parser("check", help="validate a rules file (exit 1 when invalid)",
                                      description="Validate a rules file; on error print every problem "
                                                  "with file, line, rule id and field, and exit 1.")
    check.add_argument("file", type=Path)
    check.set_defaults(func=cmd_rules_check)

    demo = commands.add_parser("demo", help="simulate a labelled stream and run it through the engine",
                               description="Simulate a labelled transaction stream, stream it through "
                                           "the handler's pipeline on the embedded stores, and report "
                                           "hits per rule against the scenario labels.")
    demo.add_argument("--rules", type=Path, default=Path("rules.yaml"), help="rules file (default rules.yaml)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--accounts", type=_positive, default=300, help="normal accounts (default 300)")
    demo.add_argument("--hours", type=float, default=8.0, help="simulated hours (default 8)")
    demo.add_argument("--batch-size", type=_positive, default=100, help="records per batch (default 100)")
    demo.add_argument("--data-dir", type=Path, default=Path(".data/demo"), help="where stores and hits go")
    demo.set_defaults(func=cmd_demo)

    graph = commands.add_parser("graph", help="investigate the entity graph",
                                description="Investigate the entity graph the pipeline wrote (gremlite "
                                            "file graph.sqlite under --data-dir).")
    graph_commands = graph.add_subparsers(dest="graph_command", required=True, metavar="SUBCOMMAND")
    account = graph_commands.add_parser("account", help="an account's neighbourhood and its hits",
                                        description="Show an account's entities, the accounts that share "
                                                    "identifiers with it, and every hit on those accounts.")
    account.add_argument("account", help="the account id")
    account.add_argument("--hops", type=_positive, default=1, help="account-to-account hops (default 1)")
    account.add_argument("--json", action="store_true", help="print JSON instead of tables")
    account.add_argument("--data-dir", type=Path, default=Path(".data"), help="directory with graph.sqlite")
    account.set_defaults(func=cmd_graph_account)
    rings = graph_commands.add_parser("rings", help="groups of accounts linked by shared identifiers",
                                      description="List groups of accounts linked through shared identifiers, "
                                                  "largest first, with the identifiers that link them.")
    rings.add_argument("--min-size", type=_positive, default=3, help="smallest ring to list (default 3)")
    rings.add_argument("--via", type=_fields, default=["email", "phone", "device_id", "card_id"],
                       help="comma-separated identifier fields (default email,phone,device_id,card_id)")
    rings.add_argument("--max-accounts-per-identifier", type=_positive, default=None,
                       help="ignore identifiers shared by more accounts than this (offices, carriers)")
    rings.add_argument("--limit", type=_positive, default=20, help="rings to show (default 20)")
    rings.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rings.add_argument("--data-dir", type=Path, default=Path(".data"), help="directory with graph.sqlite")
    rings.set_defaults(func=cmd_graph_rings)
    return parser


def _fields(text: str) -> list[str]:
    from chalicelib.rules.shared_identifier import LINKABLE

    fields = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in fields if f not in LINKABLE]
    if unknown or not fields:
        raise argparse.ArgumentTypeError(f"use identifier fields among {', '.join(LINKABLE)}")
    return fields


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args))
