"""`labels export --data-dir DIR --out labels.json`: investigators' verdicts as labels.

The file has the shape `simulate` writes and `evaluate` and `backtest --labels` read: `events`
(event id -> "fraud") and `accounts` (account id -> "fraud") for every account with a `fraud`
verdict, with all its events in the time-series store; plus `known_legit` (accounts whose alerts
were all decided `legit`, and their events: known negatives, which those readers ignore) and
`verdicts` (counts). An account with any fraud verdict is fraud; `unsure` labels nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from chalicelib.alerts import Alert
from chalicelib.settings import Settings

FRAUD = "fraud"
MAX_SEQ = 2**62
END_MS = 2**53  # every stored time


def verdict_labels(closed: Iterable[Alert], events_of: Callable[[list[str]], dict[str, list[str]]]) -> dict[str, Any]:
    """Labels from closed alerts; `events_of(accounts)` gives {account: [event ids]}."""
    verdicts: dict[str, set[str]] = {}
    counts = {"fraud": 0, "legit": 0, "unsure": 0}
    for alert in closed:
        if alert.verdict is not None:
            verdicts.setdefault(alert.account_id, set()).add(alert.verdict)
            counts[alert.verdict] += 1
    fraud = sorted(a for a, v in verdicts.items() if FRAUD in v)
    legit = sorted(a for a, v in verdicts.items() if v == {"legit"})
    events = events_of(fraud + legit)
    return {"events": {e: FRAUD for a in fraud for e in events.get(a, [])},
            "accounts": dict.fromkeys(fraud, FRAUD),
            "known_legit": {"accounts": legit, "events": [e for a in legit for e in events.get(a, [])]},
            "verdicts": counts}


def cmd_labels_export(args: argparse.Namespace) -> int:
    from chalicelib.stores.alerts_sqlite import SQLiteAlertStore
    from chalicelib.stores.sqlite import SQLiteTimeSeriesStore

    if args.out.is_dir():
        print(f"error: --out {args.out} is a directory; name a file, e.g. {args.out / 'labels.json'}", file=sys.stderr)
        return 1
    settings = Settings(data_dir=args.data_dir)
    if not settings.alerts_path.exists():
        print(f"error: {settings.alerts_path} does not exist: replay or poll into --data-dir first, then decide "
              "alerts (serve --user NAME, or the API)", file=sys.stderr)
        return 1
    alerts = SQLiteAlertStore(settings.alerts_path)
    timeseries = SQLiteTimeSeriesStore(settings.timeseries_path) if settings.timeseries_path.exists() else None
    try:
        def events_of(accounts: list[str]) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            if timeseries is not None and accounts:
                for stored in timeseries.history("account_id", accounts, -1, END_MS, MAX_SEQ):
                    out.setdefault(stored.event.account_id, []).append(stored.event.event_id)
            return out

        labels = verdict_labels(alerts.closed_alerts(), events_of)
    finally:
        alerts.close()
        if timeseries is not None:
            timeseries.close()
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        temporary = args.out.with_name(f".{args.out.name}.tmp")
        temporary.write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")
        os.replace(temporary, args.out)
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    counts = labels["verdicts"]
    print(f"labels: {args.out}: {len(labels['accounts'])} fraud accounts ({len(labels['events'])} events), "
          f"{len(labels['known_legit']['accounts'])} legit accounts, from {counts['fraud']} fraud, "
          f"{counts['legit']} legit and {counts['unsure']} unsure verdicts")
    return 0
