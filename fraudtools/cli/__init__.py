"""The command line: `python -m chalicelib <command> --help`. One module per command group:
replay, rules (check, push), rules_test, results (simulate, evaluate, results), demo, kinesis,
graph, backtest, explain, serve; `scratch` runs rules on fresh in-memory stores for the
rule-author commands, `runner` holds what the commands share, `parser` the parser and `main`.

What `runner` exports here is imported on first use, so that `python -m chalicelib` starts from
the parser alone and each command imports only what it needs."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fraudtools.cli.parser import build_parser, main

if TYPE_CHECKING:
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
_FROM_RUNNER = frozenset(__all__) - {"build_parser", "main"}


def __getattr__(name: str) -> Any:
    if name in _FROM_RUNNER:
        return getattr(importlib.import_module("fraudtools.cli.runner"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
