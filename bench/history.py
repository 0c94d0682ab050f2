"""The pipeline over a long history: does a batch get slower as history grows?

Micro rules of rules.yaml (30-day first_seen and 7-day amount_spike included), embedded SQLite,
no graph, batch 1,000, the window cache of one warm container. Reports the throughput of the
first and the last tenth of the run (wall clock, and CPU time of the process, which the other
work on a shared machine does not inflate), p50/p99 batch latency, peak memory (RSS) and what the cache
held at the end.

    .venv/bin/python bench/history.py [--accounts 10000] [--days 30] [--cache-mb 256] [--write docs/BENCHMARKS.md]

With the defaults the stream is about 1M events and the run takes several minutes
(`make bench-history`).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hot_path import micro_rules, records_of, write_section

from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource, load_rules_text
from chalicelib.stores import JsonLinesDeadLetterSink, JsonLinesHitSink, SQLiteTimeSeriesStore
from fraudtools.simulate import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--cache-mb", type=float, default=256.0)
    parser.add_argument("--write", type=Path, help="replace the 'Hot path: long history' section of this file")
    args = parser.parse_args()
    ruleset = load_rules_text(micro_rules())
    print("simulating ...", file=sys.stderr, flush=True)
    records = records_of(simulate(seed=11, accounts=args.accounts, days=args.days).events)
    n = len(records)
    rss_before = current_rss_mb()  # the records themselves, before the pipeline starts
    latencies: list[tuple[int, float]] = []  # (events, wall seconds) per batch
    cpu: list[tuple[int, float]] = []  # (events, CPU seconds of this process) per batch
    hits = 0
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline(StaticRulesSource(ruleset), SQLiteTimeSeriesStore(Path(tmp) / "ts.sqlite"),
                            JsonLinesHitSink(Path(tmp) / "hits.jsonl"), JsonLinesDeadLetterSink(Path(tmp) / "dl.jsonl"),
                            graph=None, window_cache_bytes=int(args.cache_mb * 2**20))
        for number, start in enumerate(range(0, n, args.batch_size)):
            batch = records[start:start + args.batch_size]
            began, began_cpu = time.perf_counter(), time.process_time()
            report = pipeline.process(batch)
            latencies.append((len(batch), time.perf_counter() - began))
            cpu.append((len(batch), time.process_time() - began_cpu))
            assert report.failed_from is None, report.error
            hits += len(report.new_hits)
            if number % 100 == 0:
                print(f"  {start:,} events ...", file=sys.stderr, flush=True)
        cache = pipeline.windows
        held = (cache.held_keys, cache.held_rows, cache.held_bytes, dict(cache.stats))
        pipeline.close()
    tenth = max(1, len(latencies) // 10)

    def rate(part: list[tuple[int, float]]) -> float:
        return sum(e for e, _ in part) / sum(s for _, s in part)

    seconds = sorted(s for _, s in latencies)
    p99 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    first, last = rate(latencies[:tenth]), rate(latencies[-tenth:])
    first_cpu, last_cpu = rate(cpu[:tenth]), rate(cpu[-tenth:])
    text = "\n".join([
        "## Hot path: long history",
        "",
        f"`make bench-history` (bench/history.py): `simulate(seed=11, accounts={args.accounts:,}, days={args.days:g})` "
        f"= {n:,} events through the micro rules of rules.yaml, batch {args.batch_size:,}, embedded SQLite, "
        f"window cache {args.cache_mb:g} MiB, one process; {hits:,} hits.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| whole run | {rate(latencies):,.0f} events/s ({sum(s for _, s in latencies):,.0f} s) |",
        f"| first tenth of the batches | {first:,.0f} events/s (CPU: {first_cpu:,.0f}) |",
        f"| last tenth of the batches | {last:,.0f} events/s (CPU: {last_cpu:,.0f}) |",
        f"| last tenth slower than the first by | {first / last:.2f}x (CPU: {first_cpu / last_cpu:.2f}x) |",
        f"| batch latency p50 / p99 | {statistics.median(seconds) * 1000:,.0f} ms / {p99 * 1000:,.0f} ms |",
        f"| peak RSS of the process / RSS before the run (the stream itself) | {peak_mb:,.0f} MiB / "
        f"{rss_before:,.0f} MiB |",
        f"| window cache at the end: keys, rows, estimated size | {held[0]:,}, {held[1]:,}, "
        f"{held[2] / 2**20:,.0f} MiB |",
        f"| cache counters | {held[3]} |",
        "",
    ])
    print(text)
    if args.write:
        write_section(args.write, "## Hot path: long history", text)


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
