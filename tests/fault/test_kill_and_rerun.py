"""SIGKILL a `replay` at drawn points, rerun it into the same data directory, and compare every
store with a clean run of the same stream: nothing lost, nothing doubled.

The kill points are drawn from a fixed seed (a few in the dev profile, more in CI): a number of
stored events to wait for, then a delay of up to ~two batches, so kills land between batches and
inside them (after the time-series write, during the graph phase, between hits and judged marks).
Each test prints where its kills landed (`pytest -s`).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fault.conftest import BATCH_SIZE, CleanRun, Stream
from tests.fault.harness import (
    PROFILE,
    DataDir,
    Replay,
    assert_same_stores,
    jsonl_by_id,
    read_graph,
    stored_and_unjudged,
    stored_events,
)

pytestmark = pytest.mark.fault

KillPlan = tuple[tuple[float, float], ...]  # per killed run: (fraction of the events stored, then delay ms)


def kill_plans(singles: int, doubles: int, seed: int = 20261129) -> list[KillPlan]:
    rng = random.Random(seed)
    plans: list[KillPlan] = [((rng.uniform(0.03, 0.9), rng.uniform(0, 250)),) for _ in range(singles)]
    for _ in range(doubles):  # the rerun is killed too, then a third run finishes
        first = rng.uniform(0.03, 0.5)
        plans.append(((first, rng.uniform(0, 250)), (rng.uniform(first + 0.15, 0.9), rng.uniform(0, 250))))
    return plans


PLANS = kill_plans(singles=4, doubles=2) if PROFILE == "ci" else kill_plans(singles=2, doubles=1)


def plan_id(plan: KillPlan) -> str:
    return "-then-".join(f"kill-at-{100 * fraction:.0f}pct-{delay:.0f}ms" for fraction, delay in plan)


@dataclass
class Rerun:
    landed: list[tuple[int, int]]  # per kill: (events stored, of which not yet judged)
    summary: dict[str, Any]  # the final run's report
    data: DataDir
    hits: dict[str, dict[str, Any]]  # every hit any of the runs wrote, by hit_id


def kill_then_rerun(stream: Stream, plan: KillPlan, tmp_path: Path, clean_run: CleanRun) -> Rerun:
    data = tmp_path / "data"
    outs: list[Path] = []
    landed = []
    for number, (fraction, delay_ms) in enumerate(plan):
        outs.append(tmp_path / f"hits-killed-{number}.jsonl")
        Replay.start(stream.path, data, outs[-1], BATCH_SIZE).kill_when_stored(
            data, max(1, int(fraction * len(stream.event_ids))), delay_ms)
        landed.append(stored_and_unjudged(data))
        print(f"{plan_id(plan)}: killed with {landed[-1][0]} events stored, {landed[-1][1]} of them not judged; "
              f"{where_in_the_batch(data, clean_run)}")
    outs.append(tmp_path / "hits-rerun.jsonl")
    summary = Replay.start(stream.path, data, outs[-1], BATCH_SIZE).finish()
    hits: dict[str, dict[str, Any]] = {}
    for path in outs:
        found, times = jsonl_by_id(path, "hit_id")
        assert not [h for h, n in times.items() if n > 1], f"{path.name} holds a hit twice"
        hits.update(found)
    return Rerun(landed, summary, DataDir.read(data), hits)


def where_in_the_batch(data: Path, clean_run: CleanRun) -> str:
    """Whether the killed batch's graph phase had committed (seen by its hit edges), for the report."""
    unjudged = {e for e, row in DataDir.read_events(data).items() if not row["judged"]}
    expected = {h for h, hit in clean_run.hits.items() if hit["event_id"] in unjudged}
    if not expected:
        return "the killed batch has no hits: graph phase not observable"
    present = expected & set(read_graph(data).hit_edges)
    return "killed after the graph commit" if present == expected else "killed before the graph commit"


@pytest.mark.parametrize("plan", PLANS, ids=[plan_id(p) for p in PLANS])
def test_killed_replay_then_rerun_equals_a_clean_run(plan: KillPlan, stream: Stream, clean_run: CleanRun,
                                                     tmp_path: Path) -> None:
    run = kill_then_rerun(stream, plan, tmp_path, clean_run)
    after, clean = run.data, clean_run.data

    # the rerun's own report: it stored exactly what the killed runs had not
    assert run.summary["events"] == clean_run.summary["events"] == len(stream.lines)
    assert run.summary["accepted"] == len(stream.event_ids) - run.landed[-1][0]
    assert run.summary["poison"] == clean_run.summary["poison"] == stream.poison

    assert_same_stores(after, run.hits, clean, clean_run.hits)


LAST_SEEN_GRANULARITY_S = 3600  # the graph refreshes a relationship's last_seen at most hourly


def test_killed_replay_then_rerun_keeps_relationship_last_seen(stream: Stream, clean_run: CleanRun,
                                                              tmp_path: Path) -> None:
    run = kill_then_rerun(stream, ((0.4, 0.0),), tmp_path, clean_run)
    clean = clean_run.data.graph.relationships

    def seconds(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    # last_seen is refreshed at most hourly, so the two runs may differ by less than that - no more
    apart = {ref: seconds(clean[ref]["last_seen"]) - seconds(props["last_seen"])
             for ref, props in run.data.graph.relationships.items()}
    stale = {ref: s for ref, s in apart.items() if abs(s) >= LAST_SEEN_GRANULARITY_S}
    assert not stale, f"{len(stale)} of {len(apart)} relationships' last_seen off by up to {max(stale.values()):.0f}s"


def swap_for_a_directory(sink: Path, tmp_path: Path) -> list[Path]:
    """Replace the running replay's hit file with a directory. The replay may create the file
    again between the rename and the mkdir (its next batch's hits): then that file is moved aside
    too. Returns the moved files in the order written."""
    parts: list[Path] = []
    while True:
        parts.append(sink.rename(tmp_path / f"hits-before-the-swap-{len(parts)}.jsonl"))
        try:
            sink.mkdir()
            return parts
        except FileExistsError:
            continue


def test_killed_after_the_graph_commit_before_the_batch_is_judged(stream: Stream, clean_run: CleanRun,
                                                                  tmp_path: Path) -> None:
    """The narrowest window, which timed kills do not hit: the batch's entities and hit edges are
    committed to the graph, its hits are not in the sink and its events are not marked judged.
    Made wide on purpose: the data directory's hit sink is swapped for a directory, so writing hits
    fails after the graph commit and the batch waits for redelivery; the process is killed while it
    waits, the sink is put back and the rerun completes it."""
    data, out = tmp_path / "data", tmp_path / "hits.jsonl"
    sink = data / "hits.jsonl"
    run = Replay.start(stream.path, data, out, BATCH_SIZE, verbose=True)
    while stored_events(data) < len(stream.event_ids) // 3:
        assert run.process.poll() is None, run.log.read_text()[-3000:]
        time.sleep(0.005)
    parts = swap_for_a_directory(sink, tmp_path)
    run.kill_when_logged("will be redelivered")
    assert where_in_the_batch(data, clean_run) == "killed after the graph commit"
    stored, unjudged = stored_and_unjudged(data)
    assert unjudged > 0
    sink.rmdir()
    sink.write_bytes(b"".join(part.read_bytes() for part in parts))

    summary = Replay.start(stream.path, data, out, BATCH_SIZE).finish()
    assert summary["accepted"] == len(stream.event_ids) - stored
    hits, times = jsonl_by_id(out, "hit_id")  # every hit of the data directory, both runs'
    assert max(times.values()) == 1
    assert_same_stores(DataDir.read(data), hits, clean_run.data, clean_run.hits)
