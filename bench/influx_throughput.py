"""The InfluxDB backend's throughput against the embedded SQLite store (the baseline), on the same
simulated stream, the same micro rules and batches, in one process, with a real `influxd` (Debian's
influxdb 1.6) started on loopback for the run.

    .venv/bin/python bench/influx_throughput.py [--accounts 1000] [--days 3] [--batch-size 100]

Both runs must produce the same hits; the script checks that before it prints the figures. It
also counts HTTP requests per batch (what a remote server's round trips cost).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hot_path import micro_rules
from chalicelib.events import RawRecord
from chalicelib.hits import Hit
from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource, load_rules_text
from chalicelib.stores import JsonLinesDeadLetterSink, JsonLinesHitSink, SQLiteTimeSeriesStore, TimeSeriesStore
from chalicelib.stores.influx import InfluxConnection, InfluxTimeSeriesStore, default_http
from fraudtools.simulate import simulate
from tests.influx_server import running_influxd


class CountingHttp:
    """Counts the store's HTTP requests on their way to urllib3."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.requests = inner, 0

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.requests += 1
        return self.inner.request(method, url, **kwargs)


def run(store: TimeSeriesStore, raws: list[RawRecord], batch_size: int, ruleset: Any,
        tmp: Path) -> tuple[float, list[Hit]]:
    pipeline = Pipeline(StaticRulesSource(ruleset), store, JsonLinesHitSink(tmp / f"hits-{uuid.uuid4().hex}.jsonl"),
                        JsonLinesDeadLetterSink(tmp / "dl.jsonl"))
    hits: list[Hit] = []
    started = time.perf_counter()
    for start in range(0, len(raws), batch_size):
        report = pipeline.process(raws[start:start + batch_size])
        assert report.failed_from is None, report.error
        hits += report.new_hits
    seconds = time.perf_counter() - started
    pipeline.close()
    return seconds, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    ruleset = load_rules_text(micro_rules())
    stream = simulate(seed=3, accounts=args.accounts, days=args.days)
    raws = [RawRecord(f"s:{i}", str(i), "pk", json.dumps(e).encode()) for i, e in enumerate(stream.events)]
    batches = -(-len(raws) // args.batch_size)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sqlite_s, sqlite_hits = run(SQLiteTimeSeriesStore(tmp / "ts.sqlite"), raws, args.batch_size, ruleset, tmp)
        (tmp / "influxd").mkdir()
        with running_influxd(tmp / "influxd") as url:
            connection = InfluxConnection(url, "bench")
            http = CountingHttp(default_http(connection))
            store = InfluxTimeSeriesStore(connection, http=http)
            store.create_database()
            http.requests = 0
            influx_s, influx_hits = run(store, raws, args.batch_size, ruleset, tmp)

    assert sorted(h.hit_id for h in sqlite_hits) == sorted(h.hit_id for h in influx_hits), "backends disagree"
    print(f"{len(raws):,} events, {batches} batches of {args.batch_size}, {len(influx_hits)} hits (same on both)")
    print(f"sqlite (baseline): {sqlite_s:6.2f} s  {len(raws) / sqlite_s:8,.0f} events/s")
    print(f"influxdb (local):  {influx_s:6.2f} s  {len(raws) / influx_s:8,.0f} events/s  "
          f"{influx_s / sqlite_s:.1f}x the baseline's time; {http.requests / batches:.1f} HTTP requests per batch")


if __name__ == "__main__":
    main()
