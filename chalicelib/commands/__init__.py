"""Commands for rule authors, each in its own module: `rules test`, `backtest`, `explain`.

`chalicelib/cli/parser.py` wires them in with `add_rules_test(...)` and `add_commands(...)`.
"""

from __future__ import annotations

from typing import Any


def add_rules_test(rules_commands: Any) -> None:
    """Add `rules test` under the `rules` command's subparsers."""
    from chalicelib.commands.rules_test import add_parser

    add_parser(rules_commands)


def add_commands(commands: Any) -> None:
    """Add `backtest` and `explain` to the top-level subparsers."""
    from chalicelib.commands import backtest, explain

    backtest.add_parser(commands)
    explain.add_parser(commands)


__all__ = ["add_commands", "add_rules_test"]
