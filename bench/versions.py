"""Before and after, side by side in one run: the same scenarios through a baseline checkout (the
old code, e.g. a `git worktree` of main) and this one, alternately, each as its own process.

    .venv/bin/python bench/versions.py --baseline ../main [--rounds 2] [--write docs/BENCHMARKS.md]

Scenarios (the targets of issue 20):

* the 20k-event peer stream with the three peer rules (`../shared/bench/`), whole-process
  `replay` at batch 100 (the default) and 1,000, against ezrules' 16.1 events/s and the decode floor;
* the micro rules of rules.yaml over 3 and 30 simulated days (1,000 accounts), in process after
  simulating, batch 1,000, the default window cache (`WINDOW_CACHE_MB`): per-event cost 30 vs 3 days;
* default rules.yaml with the graph on, 10 simulated days, whole-process `replay` at batch 1,000.

Every scenario's hits from both checkouts are compared (ids and content, `compare_hits.py`)
before a figure is reported. Wall time is what the machine gave; CPU time (user + system of the
child process) is what a shared machine inflates least. Medians over `--rounds`. Both checkouts'
modules are compiled to bytecode first (`make` does so at install), so neither pays for compiling.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_hits import differences, read_hits
from hot_path import write_section

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "bench"
EZRULES_EVENTS_PER_S = 16.1
CACHE_MB = 256  # the default WINDOW_CACHE_MB

#: Run inside a checkout (cwd): the micro rules of its rules.yaml over a simulated stream, no graph.
MICRO_DRIVER = r"""
import json, sys, tempfile, time
from pathlib import Path
sys.path[:0] = [".", "bench"]
from hot_path import micro_rules, records_of
from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource, load_rules_text
try:
    from fraudtools.simulate import simulate
except ImportError:  # a checkout from before the tools moved out of chalicelib/
    from chalicelib.simulate import simulate
from chalicelib.stores import JsonLinesDeadLetterSink, JsonLinesHitSink, SQLiteTimeSeriesStore
days, accounts, batch, cache_mb = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
out = sys.argv[5]
ruleset = load_rules_text(micro_rules())
records = records_of(simulate(seed=11, accounts=accounts, days=days).events)
hits = []
with tempfile.TemporaryDirectory() as tmp:
    pipeline = Pipeline(StaticRulesSource(ruleset), SQLiteTimeSeriesStore(Path(tmp) / "ts.sqlite"),
                        JsonLinesHitSink(Path(tmp) / "hits.jsonl"), JsonLinesDeadLetterSink(Path(tmp) / "dl.jsonl"),
                        graph=None, window_cache_bytes=int(cache_mb * 2**20))
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(records), batch):
        hits += pipeline.process(records[start:start + batch]).new_hits
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    evicted = pipeline.windows.stats["evicted_keys"]
    pipeline.close()
Path(out).write_text("".join(json.dumps(h.to_dict(), default=str) + "\n" for h in hits))
print(json.dumps({"events": len(records), "wall": wall, "cpu": cpu, "evicted_keys": evicted}))
"""


@dataclass
class Scenario:
    name: str
    events: int
    command: list[str]  # run with cwd = the checkout; "{python}" and "{out}" are filled in
    in_process: bool = False  # the command prints its own timing (after set-up) as JSON
    wall: dict[str, list[float]] = field(default_factory=lambda: {"old": [], "new": []})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {"old": [], "new": []})
    extra: dict[str, object] = field(default_factory=dict)

    def rate(self, version: str, clock: str = "wall") -> float:
        return self.events / statistics.median((self.wall if clock == "wall" else self.cpu)[version])


def run(scenario: Scenario, python: str, checkout: Path, version: str, out: Path) -> None:
    command = [c.replace("{out}", str(out)).replace("{python}", python) for c in scenario.command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=checkout, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if scenario.in_process:
        reported = json.loads(done.stdout.strip().splitlines()[-1])
        wall, cpu = reported["wall"], reported["cpu"]
        scenario.extra[f"evicted_{version}"] = reported["evicted_keys"]
        scenario.events = reported["events"]
    scenario.wall[version].append(wall)
    scenario.cpu[version].append(cpu)


#: What `make` compiles at install (the project's packages; bench/ is imported by the micro driver).
COMPILED = ("chalicelib", "fraudtools", "bench")


def compile_checkout(python: str, checkout: Path) -> None:
    """Bytecode for a checkout's own modules, as `make` writes at install: with
    PYTHONDONTWRITEBYTECODE set, a checkout without it recompiles them in every process (~0.1 s),
    so both versions are compiled before anything is timed."""
    folders = [name for name in COMPILED if (checkout / name).is_dir()]
    subprocess.run([python, "-m", "compileall", "-q", *folders], cwd=checkout, check=True, capture_output=True)


def decode_floor(events_file: Path) -> float:
    """Events/s of base64 + JSON parsing alone, on the same records."""
    encoded = [base64.b64encode(line.encode()) for line in events_file.read_text().splitlines()]
    started = time.perf_counter()
    for text in encoded:
        orjson.loads(base64.b64decode(text))
    return len(encoded) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="checkout of the old code (with its .venv)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--peer", type=Path, default=PEER, help="folder of the peer stream and rules")
    parser.add_argument("--write", type=Path, help="replace the 'Before and after' section of this markdown file")
    args = parser.parse_args()
    if not (args.peer / "stream_20k.jsonl").exists():
        sys.exit(f"the peer stream is not in {args.peer}: this benchmark needs ../shared/bench/ (or --peer)")
    checkouts = {"old": args.baseline.resolve(), "new": ROOT}
    python = {v: str(c / ".venv" / "bin" / "python") for v, c in checkouts.items()}
    for version, checkout in checkouts.items():
        compile_checkout(python[version], checkout)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        graph_events = tmp / "sim10d.jsonl"
        subprocess.run([python["new"], "-m", "chalicelib", "simulate", "--out-dir", str(tmp / "sim"), "--seed", "7",
                        "--accounts", str(args.accounts), "--days", "10"], cwd=ROOT, check=True, capture_output=True)
        (tmp / "sim" / "events.jsonl").rename(graph_events)
        graph_n = len(graph_events.read_text().splitlines())
        peer_events, peer_rules = args.peer / "stream_20k.jsonl", args.peer / "peer_rules.yaml"

        def replay(rules: Path, events: Path, batch: int, fmt: str = "auto") -> list[str]:
            return ["{python}", "-m", "chalicelib", "replay", "--rules", str(rules), "--events", str(events),
                    "--format", fmt, "--batch-size", str(batch), "--out", "{out}"]

        def micro(days: int) -> list[str]:
            return ["{python}", "-c", MICRO_DRIVER, str(days), str(args.accounts), "1000", str(CACHE_MB), "{out}"]

        scenarios = [
            Scenario("peer stream, 3 peer rules, replay batch 100 (default)", 20_000,
                     replay(peer_rules, peer_events, 100, "native")),
            Scenario("peer stream, 3 peer rules, replay batch 1,000", 20_000,
                     replay(peer_rules, peer_events, 1000, "native")),
            Scenario("micro rules of rules.yaml, 3 simulated days, batch 1,000 (in process)", 0, micro(3), True),
            Scenario("micro rules of rules.yaml, 30 simulated days, batch 1,000 (in process)", 0, micro(30), True),
            Scenario(f"rules.yaml with the graph, 10 simulated days ({graph_n:,} events), replay batch 1,000",
                     graph_n, replay(ROOT / "rules.yaml", graph_events, 1000)),
        ]
        for round_number in range(args.rounds):
            for index, scenario in enumerate(scenarios):
                order = ("old", "new") if (round_number + index) % 2 == 0 else ("new", "old")
                for version in order:
                    print(f"  round {round_number + 1}: {scenario.name} [{version}] ...", file=sys.stderr, flush=True)
                    out = tmp / f"hits-{index}-{version}.jsonl"
                    run(scenario, python[version], checkouts[version], version, out)
                old, new = (read_hits(tmp / f"hits-{index}-{v}.jsonl") for v in ("old", "new"))
                differ = differences(old, new)
                if differ:
                    sys.exit(f"{scenario.name}: the hits differ:\n  " + "\n  ".join(differ))
                scenario.extra["hits"] = len(new)
        floor = decode_floor(peer_events)
    text = report(scenarios, floor, args.rounds)
    print(text)
    if args.write:
        write_section(args.write, "## Before and after: compact rows (issue 20)", text)


def report(scenarios: list[Scenario], floor: float, rounds: int) -> str:
    peer100, peer1000, micro3, micro30, graph = scenarios
    lines = [
        "## Before and after: compact rows (issue 20)",
        "",
        f"`bench/versions.py --baseline <main>`: each scenario through the old code (main before issue 20) and the "
        f"new, alternately, as separate processes (both checkouts compiled to bytecode first), in one run; "
        f"medians of {rounds} rounds; "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores shared with other "
        "work while measured (wall time is what the machine gave; CPU time is user + system of the process). "
        "Hits are identical in every scenario (ids and content, checked before reporting).",
        "",
        "| scenario | hits | old events/s (wall) | new events/s (wall) | new/old wall | old events/s (CPU) "
        "| new events/s (CPU) | new/old CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scenarios:
        old, new, old_cpu, new_cpu = s.rate("old"), s.rate("new"), s.rate("old", "cpu"), s.rate("new", "cpu")
        lines.append(f"| {s.name} | {s.extra['hits']} | {old:,.0f} | {new:,.0f} | {new / old:.2f}x | "
                     f"{old_cpu:,.0f} | {new_cpu:,.0f} | {new_cpu / old_cpu:.2f}x |")

    def cost_ratio(version: str, clock: str) -> float:
        return micro3.rate(version, clock) / micro30.rate(version, clock)

    peer, peer_cpu, peer_batch = peer100.rate("new"), peer100.rate("new", "cpu"), peer1000.rate("new")
    cost = {(v, c): cost_ratio(v, c) for v in ("old", "new") for c in ("wall", "cpu")}

    lines += [
        "",
        "Targets (issue 20), with the new code:",
        "",
        f"- peer stream at the default batch, whole process: **{peer:,.0f} events/s** wall "
        f"({peer_cpu:,.0f} on CPU time) = {peer / EZRULES_EVENTS_PER_S:,.0f}x ezrules; "
        f"target 16,100 (1,000x): {peer / 16_100:.2f} of it.",
        f"- peer stream at batch 1,000: {peer_batch:,.0f} events/s = **{peer_batch / floor:.3f}** of "
        f"the decode floor ({floor:,.0f} events/s, base64 + JSON of the same records, in process); target 0.10.",
        f"- micro rules, per-event cost 30 vs 3 days at the default cache: **{cost['new', 'wall']:.2f}x** wall, "
        f"{cost['new', 'cpu']:.2f}x CPU (old: {cost['old', 'wall']:.2f}x wall, {cost['old', 'cpu']:.2f}x "
        f"CPU); target <= 1.5x. Keys evicted over 30 days: old {micro30.extra.get('evicted_old')}, "
        f"new {micro30.extra.get('evicted_new')}.",
        f"- rules.yaml with the graph, 10 days, batch 1,000: **{graph.rate('new'):,.0f} events/s** wall "
        f"({graph.rate('new', 'cpu'):,.0f} on CPU time); target 10,000: {graph.rate('new') / 10_000:.2f} of it.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
