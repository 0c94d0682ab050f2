"""The command line: `python -m chalicelib <command> --help`. One module per command group:
replay, rules (check, push), rules_test, results (simulate, evaluate, results), demo, kinesis,
graph, backtest, explain, serve; `scratch` runs rules on fresh in-memory stores for the
rule-author commands, `runner` holds what the commands share, `parser` the parser and `main`."""

from __future__ import annotations

from fraudtools.cli.parser import build_parser, main
from fraudtools.cli.runner import (
    RunTotals,
    embedded_handler,
    embedded_pipeline,
    load_rules_or_exit,
    progress_bar,
    stream_through,
)

__all__ = [
    "RunTotals",
    "build_parser",
    "embedded_handler",
    "embedded_pipeline",
    "load_rules_or_exit",
    "main",
    "progress_bar",
    "stream_through",
]
