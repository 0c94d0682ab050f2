"""The argument parser (one sub-command per command group) and `main`. The parser is all here and
imports only what its help texts need; each command's module is imported when that command runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chalicelib.entities import DEFAULT_VIA
from chalicelib.linkage import DEFAULT_LINK_SHARES, DEFAULT_MIN_LINK_USES
from fraudtools.record_files import (
    LINE_FORMATS,
)

Command = Callable[[argparse.Namespace], int]


def _command(module: str, name: str) -> Command:
    """The function `name` of `fraudtools.cli.<module>`, imported only when the command runs: a
    process imports what its one command needs (`replay` neither the API server, boto3 nor the
    simulator), and `--help` what the parser needs."""
    def run(args: argparse.Namespace) -> int:
        command: Command = getattr(importlib.import_module(f"fraudtools.cli.{module}"), name)
        return command(args)
    run.__name__ = run.__qualname__ = name
    return run


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
    replay.set_defaults(func=_command("replay", "cmd_replay"))

    rules = commands.add_parser("rules", help="work with rules files")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True, metavar="SUBCOMMAND")
    check = rules_commands.add_parser("check", help="validate a rules file (exit 1 when invalid)",
                                      description="Validate a rules file; on error print every problem "
                                                  "with file, line, rule id and field, and exit 1.")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_command("rules", "cmd_rules_check"))
    push = rules_commands.add_parser("push", help="validate a rules file, then upload it to S3",
                                     description="Validate a rules file and, only if it is valid, upload it to the "
                                                 "S3 rules object the deployed functions hot-reload.")
    push.add_argument("file", type=Path)
    push.add_argument("--bucket", required=True, help="the rules bucket")
    push.add_argument("--key", default="rules.yaml", help="the rules object key (default rules.yaml)")
    push.add_argument("--region", default=None, help="AWS region (default: from the environment)")
    push.add_argument("--endpoint-url", default=None, help="an S3-API endpoint (for local testing)")
    push.set_defaults(func=_command("rules", "cmd_rules_push"))
    test = rules_commands.add_parser(
        "test", help="run the rules' examples through the pipeline (exit 1 on a failure)",
        description="Run every rule's `examples:` (inline, or `file: NAME.yaml` next to the rules file) through "
                    "the real pipeline on throw-away embedded stores; report each failure with the rule, the "
                    "example, the computed aggregate and the threshold.")
    test.add_argument("file", type=Path, nargs="?", default=Path("rules.yaml"), help="rules file (default rules.yaml)")
    test.add_argument("--require-examples", action="store_true", help="a rule without examples is a failure")
    test.set_defaults(func=_command("rules_test", "cmd_rules_test"))

    demo = commands.add_parser("demo", help="the main job: simulate, stream through the handler, evaluate, report",
                               description="Simulate a labelled stream, stream it through the Kinesis handler on the "
                                           "embedded stores, evaluate micro, macro and combined detection against "
                                           "the labels, and write a terminal and an HTML report.")
    demo.add_argument("--rules", type=Path, default=Path("rules.yaml"), help="rules file (default rules.yaml)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--accounts", type=_ACCOUNTS, default=1000, help="normal accounts (default 1000)")
    demo.add_argument("--days", type=_DAYS, default=3.0, help="simulated days (default 3)")
    demo.add_argument("--lead-in-days", type=_LEAD_IN_DAYS, default=0.0,
                      help="days of the customers' normal traffic streamed first, not scored (default 0; "
                           "new-payee-fanout-3h needs 30 to judge)")
    demo.add_argument("--batch-size", type=_positive, default=100, help="records per batch (default 100)")
    demo.add_argument("--data-dir", type=Path, default=Path(".data/demo"), help="where stores, hits and reports go")

    results = commands.add_parser("results", help="write docs/RESULTS.md: the evaluation over several seeds",
                                  description="Run the demo's simulation through the handler for several seeds and "
                                              "write the evaluation as Markdown: the first seed in detail, every "
                                              "seed's overall scores, and a reading generated from the numbers.")
    results.add_argument("--rules", type=Path, default=Path("rules.yaml"), help="rules file (default rules.yaml)")
    results.add_argument("--tuning-seeds", type=_seeds, default=[1, 2],
                         help="seeds the default rules were tuned on, reported apart (default 1,2)")
    results.add_argument("--seeds", type=_seeds, default=[7, 11, 23],
                         help="held-out seeds, never looked at while tuning (default 7,11,23)")
    results.add_argument("--reference", type=Path, default=Path("tests/fixtures/seed-producer-sample.jsonl"),
                         help="the reference producer's records, replayed for its ring (default the fixture)")
    results.add_argument("--reference-runs", type=Path,
                         default=Path("tests/fixtures/seed-producer-three-runs.jsonl"),
                         help="the reference producer run three times (checked if the file exists)")
    results.add_argument("--accounts", type=_ACCOUNTS, default=1000, help="normal accounts (default 1000)")
    results.add_argument("--days", type=_DAYS, default=3.0, help="simulated days (default 3)")
    results.add_argument("--lead-in-days", type=_LEAD_IN_DAYS, default=30.0,
                         help="days of the same customers' normal traffic before the evaluated days, streamed "
                              "first and not scored, so the stores have watched the longest window that needs "
                              "history (new-payee-fanout-3h: 30 days) (default 30)")
    results.add_argument("--batch-size", type=_positive, default=100, help="records per batch (default 100)")
    results.add_argument("--data-dir", type=Path, default=Path(".data/results"), help="stores per seed go here")
    results.add_argument("--out", type=Path, default=Path("docs/RESULTS.md"), help="Markdown file to write")
    results.set_defaults(func=_command("results", "cmd_results"))
    demo.set_defaults(func=_command("demo", "cmd_demo"))

    simulate_cmd = commands.add_parser("simulate", help="write a synthetic labelled stream",
                                       description="Write a deterministic synthetic stream (events.jsonl) and its "
                                                   "ground truth per event and per account (labels.json).")
    simulate_cmd.add_argument("--out-dir", type=Path, required=True, help="directory for events.jsonl and labels.json")
    simulate_cmd.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    simulate_cmd.add_argument("--accounts", type=_ACCOUNTS, default=1000, help="normal accounts (default 1000)")
    simulate_cmd.add_argument("--days", type=_DAYS, default=3.0, help="simulated days (default 3)")
    simulate_cmd.add_argument("--lead-in-days", type=_LEAD_IN_DAYS, default=0.0,
                              help="days of normal traffic before them, unlabelled, ids sim-SEED-lead-N (default 0)")
    simulate_cmd.add_argument("--format", choices=("native", "seed"), default="native",
                              help="native records, or the original reference producer's format")
    simulate_cmd.set_defaults(func=_command("results", "cmd_simulate"))

    evaluate_cmd = commands.add_parser("evaluate", help="precision / recall of hits against labels",
                                       description="Score hits (from replay or demo) against ground-truth labels: "
                                                   "precision, recall and F1 per scenario and overall, at event and "
                                                   "account level, for micro, macro, combined and composite rules.")
    evaluate_cmd.add_argument("--labels", type=Path, required=True, help="labels.json from simulate")
    evaluate_cmd.add_argument("--hits", type=Path, required=True, help="hits JSON lines (replay --out)")
    evaluate_cmd.add_argument("--rules", type=Path, default=None, help="the rules file used (named in the report)")
    evaluate_cmd.add_argument("--json", action="store_true", help="print JSON instead of tables")
    evaluate_cmd.add_argument("--markdown", type=Path, default=None, help="also write a Markdown report here")
    evaluate_cmd.set_defaults(func=_command("results", "cmd_evaluate"))

    kinesis = commands.add_parser("kinesis", help="publish to and poll a Kinesis stream (AWS or a local endpoint)",
                                  description="A real Kinesis path: publish events with PutRecords, and poll a "
                                              "stream shard by shard like Lambda's event source mapping, invoking "
                                              "the handler on the embedded stores.")
    kinesis_commands = kinesis.add_subparsers(dest="kinesis_command", required=True, metavar="SUBCOMMAND")
    for name, helptext in (("produce", "publish a file of events with PutRecords"),
                           ("poll", "read every shard to its end and run the handler on each batch")):
        sub = kinesis_commands.add_parser(name, help=helptext, description=helptext)
        sub.add_argument("--stream", required=True, help="stream name")
        sub.add_argument("--endpoint-url", default=None, help="a Kinesis-API endpoint, e.g. a moto server on "
                         "http://127.0.0.1:PORT (default: AWS)")
        sub.add_argument("--region", default="us-east-1", help="region (default us-east-1)")
        if name == "produce":
            sub.add_argument("--events", type=Path, required=True, help="events, one per line")
            sub.add_argument("--partition-field", default="account_id",
                             help="record field used as partition key (default account_id)")
            sub.add_argument("--create-stream", action="store_true", help="create the stream if it is missing")
            sub.add_argument("--shards", type=_positive, default=2, help="shards when creating (default 2)")
            sub.set_defaults(func=_command("kinesis", "cmd_kinesis_produce"))
        else:
            sub.add_argument("--rules", type=Path, default=Path("rules.yaml"), help="rules file")
            sub.add_argument("--data-dir", type=Path, default=Path(".data"), help="embedded stores")
            sub.add_argument("--batch-size", type=_positive, default=100, help="records per batch (default 100)")
            sub.add_argument("--checkpoints", type=Path, default=None, help="checkpoint file "
                             "(default DATA_DIR/checkpoints-STREAM.json)")
            sub.set_defaults(func=_command("kinesis", "cmd_kinesis_poll"))

    graph = commands.add_parser("graph", help="investigate the entity graph",
                                description="Investigate the entity graph the pipeline wrote under --data-dir "
                                            "(entity-graph.sqlite, or gremlite's graph.sqlite).")
    graph_commands = graph.add_subparsers(dest="graph_command", required=True, metavar="SUBCOMMAND")
    account = graph_commands.add_parser("account", help="an account's neighbourhood and its hits",
                                        description="Show an account's entities, the accounts that share "
                                                    "identifiers with it, and every hit on those accounts.")
    account.add_argument("account", help="the account id")
    account.add_argument("--hops", type=_positive, default=1, help="account-to-account hops (default 1)")
    account.add_argument("--json", action="store_true", help="print JSON instead of tables")
    account.add_argument("--data-dir", type=Path, default=Path(".data"), help="directory with the embedded graph")
    account.set_defaults(func=_command("graph", "cmd_graph_account"))
    rings = graph_commands.add_parser("rings", help="groups of accounts linked by shared identifiers",
                                      description="List groups of accounts linked through shared identifiers, "
                                                  "largest first, with the identifiers that link them.")
    rings.add_argument("--min-size", type=_positive, default=3, help="smallest ring to list (default 3)")
    rings.add_argument("--via", type=_fields, default=list(DEFAULT_VIA),
                       help="comma-separated identifier fields (default email,phone,device_id,card_id)")
    rings.add_argument("--max-accounts-per-identifier", type=_positive, default=None,
                       help="ignore identifiers shared by more accounts than this (offices, carriers)")
    rings.add_argument("--rank", choices=("cohesion", "size"), default="cohesion",
                       help="order: cohesion (evidence x cohesion of the links, default) or size")
    rings.add_argument("--min-link-share", type=_share, default=None,
                       help="follow an account's link to an identifier only if it used it on at least this share "
                            "of its events with that field (0-1; default per field: "
                            + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LINK_SHARES.items()) + ")")
    rings.add_argument("--min-link-uses", type=_positive, default=DEFAULT_MIN_LINK_USES,
                       help=f"... and at least this many times (default {DEFAULT_MIN_LINK_USES})")
    rings.add_argument("--limit", type=_positive, default=20, help="rings to show (default 20)")
    rings.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rings.add_argument("--data-dir", type=Path, default=Path(".data"), help="directory with the embedded graph")
    rings.set_defaults(func=_command("graph", "cmd_graph_rings"))

    backtest = commands.add_parser(
        "backtest", help="what a rules change would have done to past events",
        description="Replay events point-in-time through a new ruleset and a baseline, each on throw-away "
                    "embedded stores, and print per rule the hits added and removed; with labels, precision, "
                    "recall and F1 before and after (missed labelled events count as false negatives).")
    backtest.add_argument("--rules", type=Path, required=True, help="the new rules file")
    backtest.add_argument("--baseline", type=Path, default=None, help="the rules file to compare with (default: none)")
    backtest.add_argument("--events", type=Path, required=True, help="events, one per line (as `replay` reads)")
    backtest.add_argument("--labels", type=Path, default=None, help="labels.json as `simulate` writes it")
    backtest.add_argument("--format", choices=LINE_FORMATS, default="auto", help="events line format (default auto)")
    backtest.add_argument("--batch-size", type=_positive, default=100, help="records per batch (default 100)")
    backtest.add_argument("--no-graph", action="store_true",
                        help="skip the graph even when a ruleset has macro or composite rules (faster; those "
                             "rules then do not run)")
    backtest.add_argument("--json", action="store_true", help="print JSON")
    backtest.set_defaults(func=_command("backtest", "cmd_backtest"))

    explain = commands.add_parser(
        "explain", help="why each rule did or did not fire on one event",
        description="Run a history and then one event through the pipeline on throw-away stores and show, "
                    "for every rule: window bounds, aggregate, threshold, contributing events and verdict.")
    explain.add_argument("--rules", type=Path, required=True, help="rules file")
    explain.add_argument("--event", required=True, help="the event as JSON (native or seed record), or @FILE")
    explain.add_argument("--history", type=Path, default=None, help="events that arrived before it, one per line")
    explain.add_argument("--format", choices=LINE_FORMATS, default="auto", help="history line format (default auto)")
    explain.add_argument("--json", action="store_true", help="print JSON")
    explain.set_defaults(func=_command("explain", "cmd_explain"))

    serve = commands.add_parser(
        "serve", help="the investigator's web page and REST API on 127.0.0.1",
        description="Serve the investigator's view (page at /, REST API under /api, OpenAPI at "
                    "/api/openapi.json) and the decision API (POST /api/decisions) over the embedded stores "
                    "in DIR (created when new), on 127.0.0.1 without authorization.")
    serve.add_argument("--data-dir", type=Path, default=Path(".data/demo"),
                       help="the stores a demo/replay/poll run keeps, or a new directory (default .data/demo)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port on 127.0.0.1 (default 8000; 0: any free)")
    serve.add_argument("--rules", type=Path, default=None,
                       help="rules file in force for the page and for decisions (default rules.yaml)")
    serve.add_argument("--user", default=None, metavar="NAME",
                       help="who assigns and decides alerts through this server (recorded in their audit trail); "
                            "without it the alert transitions answer 403")
    serve.set_defaults(func=_command("serve", "cmd_serve"))

    labels = commands.add_parser("labels", help="investigators' verdicts as labels for evaluate and backtest",
                                 description="Work with the labels investigators' verdicts make.")
    labels_commands = labels.add_subparsers(dest="labels_command", required=True, metavar="SUBCOMMAND")
    export = labels_commands.add_parser("export", help="write the verdicts as labels.json",
                                        description="Write the alerts' verdicts under --data-dir as a labels file in "
                                                    "the shape `evaluate --labels` and `backtest --labels` read: fraud "
                                                    "accounts and their events; legit accounts as known negatives.")
    export.add_argument("--data-dir", type=Path, required=True, help="the data directory the alerts live in")
    export.add_argument("--out", type=Path, required=True, help="labels file to write (labels.json)")
    export.set_defaults(func=_command("labels", "cmd_labels_export"))
    return parser


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("seeds are whole numbers separated by commas, e.g. 7,11,23") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return seeds


def _fields(text: str) -> list[str]:
    from chalicelib.entities import LINKABLE

    fields = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in fields if f not in LINKABLE]
    if unknown or not fields:
        raise argparse.ArgumentTypeError(f"use identifier fields among {', '.join(LINKABLE)}")
    return fields


def _simulation_size(name: str, convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type for one of `simulate`'s sizes, refused with `simulation_problems`' reason."""
    def parse(text: str) -> Any:
        from fraudtools.simulate import MIN_ACCOUNTS, MIN_DAYS, simulation_problems

        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        sizes = {"accounts": MIN_ACCOUNTS, "days": MIN_DAYS, "lead_in_days": 0.0, name: value}
        if problems := simulation_problems(**sizes):
            raise argparse.ArgumentTypeError(problems[0])
        return value
    return parse


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return value


_ACCOUNTS = _simulation_size("accounts", _positive)
_DAYS = _simulation_size("days", float)
_LEAD_IN_DAYS = _simulation_size("lead_in_days", float)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    from chalicelib.stores.exceptions import StoreError  # after parsing: `--help` needs none of the stores

    try:
        code = int(args.func(args))
        sys.stdout.flush()
    except StoreError as exc:  # a store that cannot be opened or written (a wrong file, a full disk, ...)
        if args.verbose:
            raise
        print(f"error: {exc}\n(check the files or services the command was pointed at; -v shows where it failed)",
              file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Whoever read our output stopped (`... --json | head`): end quietly like a tool stopped by
        # SIGPIPE, with stdout pointed at /dev/null so the exit flush cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # 128 + SIGPIPE, as a shell reports it
    return code
