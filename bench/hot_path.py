"""The micro-rule hot path, side by side in one process on one simulated stream:

* the decode floor: base64 + JSON of the same records and nothing else;
* the per-event design: write each event, then query each key field's window for it;
* the pipeline (micro rules of rules.yaml, embedded SQLite, no graph) at batch 100 / 1,000 / 10,000,
  with the window cache of a warm container, and at batch 1,000 with the cache off (every batch
  reads whole windows, which is also what a cold container does);
* `replay` of a 20k-event stream with velocity, fan-out and 24h amount-spike rules, as a whole
  process (interpreter start, imports and set-up included).

    .venv/bin/python bench/hot_path.py [--accounts 1000] [--days 3] [--write docs/BENCHMARKS.md]

Every design must produce the same hits; the script checks that before it prints ratios.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.whole_window import evaluate
from chalicelib.events import RawRecord, Transaction, decode_record
from chalicelib.hits import Hit
from chalicelib.pipeline import Pipeline
from chalicelib.rules import RuleSet, StaticRulesSource, load_rules_text
from chalicelib.rules.engine import history_requests
from chalicelib.stores import JsonLinesDeadLetterSink, JsonLinesHitSink, SQLiteTimeSeriesStore
from fraudtools.simulate import simulate

ROOT = Path(__file__).resolve().parent.parent

REPLAY_RULES = """
version: 1
rules:
  - {id: velocity-1m, kind: velocity, key: account_id, window: 1m, threshold: 5}
  - {id: ip-fanout-10m, kind: fan_out, key: ip, distinct: account_id, window: 10m, threshold: 5}
  - {id: amount-spike-24h, kind: amount_spike, key: account_id, field: amount, window: 24h, factor: 10,
     min_history: 5}
"""


def micro_rules() -> str:
    """rules.yaml without the macro and composite rules (this benchmark has no graph)."""
    import yaml

    data = yaml.safe_load((ROOT / "rules.yaml").read_text())
    data["rules"] = [r for r in data["rules"] if r["kind"] not in ("shared_identifier", "near_flagged", "composite")]
    return yaml.safe_dump(data)


def records_of(events: list[dict[str, Any]]) -> list[RawRecord]:
    return [RawRecord(f"s:{i}", str(i), "pk", json.dumps(e).encode()) for i, e in enumerate(events)]


def decode_floor(records: list[RawRecord]) -> float:
    """Seconds to base64-decode and parse every record (what Lambda hands over: base64 text)."""
    encoded = [base64.b64encode(r.data) for r in records]
    started = time.perf_counter()
    for text in encoded:
        orjson.loads(base64.b64decode(text))
    return time.perf_counter() - started


def run_pipeline(ruleset: RuleSet, records: list[RawRecord], batch_size: int,
                 cache_bytes: int) -> tuple[float, list[Hit]]:
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline(StaticRulesSource(ruleset), SQLiteTimeSeriesStore(Path(tmp) / "ts.sqlite"),
                            JsonLinesHitSink(Path(tmp) / "hits.jsonl"), JsonLinesDeadLetterSink(Path(tmp) / "dl.jsonl"),
                            graph=None, window_cache_bytes=cache_bytes)
        hits: list[Hit] = []
        started = time.perf_counter()
        for start in range(0, len(records), batch_size):
            hits += pipeline.process(records[start:start + batch_size]).new_hits
        elapsed = time.perf_counter() - started
        pipeline.close()
    return elapsed, hits


def run_per_event(ruleset: RuleSet, records: list[RawRecord]) -> tuple[float, list[Hit]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteTimeSeriesStore(Path(tmp) / "ts.sqlite")
        store.prepare({r.key_field for r in ruleset.rules if r.window is not None})
        hits: list[Hit] = []
        observed: int | None = None
        started = time.perf_counter()
        for raw in records:
            event = decode_record(raw)
            assert isinstance(event, Transaction)
            pending = list(store.write([event]).pending)
            history = {r.key_field: store.history(r.key_field, r.keys, r.start_ms, r.end_ms, r.max_seq)
                       for r in history_requests(ruleset, pending)}
            observed = store.observed_since() if observed is None else observed  # kept once known, as the pipeline does
            hits += evaluate(ruleset, pending, history, observed_since=observed)
            store.mark_judged([event.event_id])
        elapsed = time.perf_counter() - started
        store.close()
    return elapsed, hits


def run_replay(events: list[dict[str, Any]], rules: str) -> tuple[float, int]:
    """Wall time of `python -m chalicelib replay` as a whole process; and the number of hits."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "rules.yaml").write_text(rules)
        (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
        env = dict(os.environ)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "chalicelib", "replay", "--rules", str(folder / "rules.yaml"),
                        "--events", str(folder / "events.jsonl"), "--out", str(folder / "hits.jsonl")],
                       check=True, cwd=ROOT, env=env, capture_output=True)
        elapsed = time.perf_counter() - started
        hits = len((folder / "hits.jsonl").read_text().splitlines())
    return elapsed, hits


def same_hits(a: list[Hit], b: list[Hit]) -> bool:
    return sorted(h.hit_id for h in a) == sorted(h.hit_id for h in b)


def timed(label: str, run: Callable[[], tuple[float, list[Hit]]]) -> tuple[float, list[Hit]]:
    print(f"  {label} ...", file=sys.stderr, flush=True)
    return run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--cache-mb", type=float, default=256.0)
    parser.add_argument("--write", type=Path, help="replace the 'Hot path' section of this markdown file")
    args = parser.parse_args()
    ruleset = load_rules_text(micro_rules())
    stream = simulate(seed=3, accounts=args.accounts, days=args.days)
    records = records_of(stream.events)
    n = len(records)
    cache = int(args.cache_mb * 2**20)

    floor_s = decode_floor(records)
    per_event_s, per_event_hits = timed("per-event design", lambda: run_per_event(ruleset, records))
    results = {}
    for batch in (100, 1000, 10000):
        results[batch] = timed(f"pipeline, batch {batch}",
                               lambda batch=batch: run_pipeline(ruleset, records, batch, cache))
    cold_s, cold_hits = timed("pipeline, batch 1000, cache off",
                              lambda: run_pipeline(ruleset, records, 1000, 0))
    for _, hits in [*results.values(), (cold_s, cold_hits)]:
        assert same_hits(hits, per_event_hits), "designs disagree"

    replay_stream = simulate(seed=5, accounts=1000, days=6.2).events[:20_000]
    replay_s, replay_hits = run_replay(replay_stream, REPLAY_RULES)
    in_process_s, _ = run_pipeline(load_rules_text(REPLAY_RULES), records_of(replay_stream), 100, cache)

    rate = {label: n / seconds for label, seconds in [
        ("floor", floor_s), ("per_event", per_event_s), ("cold", cold_s),
        *((f"batch {b}", s) for b, (s, _) in results.items())]}
    rows = [
        ("decode floor (base64 + JSON only)", rate["floor"]),
        ("per-event design (write, then one window query per key field, per event)", rate["per_event"]),
        *((f"pipeline, micro rules, batch {b:,}, warm window state", rate[f"batch {b}"]) for b in results),
        ("pipeline, micro rules, batch 1,000, window cache off (= cold container)", rate["cold"]),
    ]
    lines = [
        "## Hot path",
        "",
        f"`make bench` (bench/hot_path.py), one process, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores (shared with other work while measured). "
        f"Stream: `simulate(seed=3, accounts={args.accounts}, days={args.days:g})` = {n:,} events; "
        f"{len(ruleset.rules)} micro rules of rules.yaml; embedded SQLite; {len(per_event_hits)} hits, "
        "identical in every design (checked).",
        "",
        "| design | events/s | vs decode floor | vs per-event |",
        "|---|---:|---:|---:|",
        *(f"| {label} | {r:,.0f} | {r / rate['floor']:.3f} | {r / rate['per_event']:.1f}x |" for label, r in rows),
        "",
        f"Targets: batch 1,000 at >= 0.10 of the floor: **{rate['batch 1000'] / rate['floor']:.3f}**; "
        f">= 20x the per-event design: **{rate['batch 1000'] / rate['per_event']:.1f}x**.",
        "",
        f"`replay` of a {len(replay_stream):,}-event stream (velocity 1m, IP fan-out 10m, amount spike 24h; "
        f"batch 100), whole process with interpreter start and set-up: "
        f"**{replay_s:.2f} s = {len(replay_stream) / replay_s:,.0f} events/s** ({replay_hits} hits). "
        "`replay` also builds the embedded entity graph (SQLite tables) and writes hits to a file; "
        f"the same stream through the pipeline in process without a graph: "
        f"{len(replay_stream) / in_process_s:,.0f} events/s.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, "## Hot path", text)


def write_section(path: Path, heading: str, text: str) -> None:
    """Replace (or append) the section that starts at the line `heading`, up to the next '## '."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    marker = "\n" + heading + "\n"
    if marker in old:
        before, _, rest = old.partition(marker)
        after = rest[rest.find("\n## "):] if "\n## " in rest else "\n"
        path.write_text(before + "\n" + text.rstrip("\n") + "\n" + after)
    else:
        path.write_text(old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
