"""What alerts cost the pipeline: the demo's simulated stream through rules.yaml on the embedded
stores (SQLite time series and graph), batch 100, once without alerts and once with the SQLite
alert store, each in a fresh directory; the same hits are checked before the ratio is printed.

    .venv/bin/python bench/alerts.py [--accounts 1000] [--days 3] [--repeat 3]

Prints seconds (best of --repeat) and the ratio with/without; numbers, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.alerts import AlertFilter
from chalicelib.events import RawRecord
from chalicelib.inbox import AlertInbox
from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource, load_rules_file
from chalicelib.stores import SQLiteGraphStore, SQLiteTimeSeriesStore
from chalicelib.stores.alerts_sqlite import SQLiteAlertStore
from fraudtools.simulate import simulate
from fraudtools.testing.harness import MemoryDeadLetterSink, MemoryHitSink

ROOT = Path(__file__).resolve().parent.parent


def run(records: list[RawRecord], with_alerts: bool) -> tuple[float, int, int]:
    """(seconds, hits, alerts) of one pass in a fresh directory."""
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        directory = Path(tmp)
        inbox = AlertInbox(SQLiteAlertStore(directory / "alerts.sqlite")) if with_alerts else None
        hits = MemoryHitSink()
        pipeline = Pipeline(StaticRulesSource(load_rules_file(ROOT / "rules.yaml")),
                            SQLiteTimeSeriesStore(directory / "ts.sqlite"), hits, MemoryDeadLetterSink(),
                            graph=SQLiteGraphStore(directory / "graph.sqlite"), alerts=inbox)
        started = time.perf_counter()
        for start in range(0, len(records), 100):
            report = pipeline.process(records[start:start + 100])
            assert report.failed_from is None, report.error
        seconds = time.perf_counter() - started
        opened = 0 if inbox is None else len(inbox.store.list_alerts(AlertFilter(), 100_000))
        pipeline.close()
        return seconds, len(hits.hits), opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    stream = simulate(seed=7, accounts=args.accounts, days=args.days)
    records = [RawRecord(f"s:{i}", str(i), "pk", json.dumps(e).encode()) for i, e in enumerate(stream.events)]
    pairs = [(run(records, False), run(records, True)) for _ in range(args.repeat)]  # interleaved: drift hits both
    without = min((p[0] for p in pairs), key=lambda r: r[0])
    with_alerts = min((p[1] for p in pairs), key=lambda r: r[0])
    assert without[1] == with_alerts[1], "alerts changed the hits"
    print(f"{len(records)} events, {without[1]} hits, {with_alerts[2]} alerts; batch 100, best of {args.repeat}")
    print(f"without alerts {without[0]:.2f} s, with alerts (SQLite) {with_alerts[0]:.2f} s: "
          f"ratio {with_alerts[0] / without[0]:.3f}")


if __name__ == "__main__":
    main()
