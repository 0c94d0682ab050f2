"""Graph timestamps under restarts, redelivery and concurrent writers (issue 8, deliverable 3).

One stream, replayed into one data directory by two `replay` processes - one after the other
(the second re-sending part of the first's events, in another order), and both at once (each
with half the events, arriving out of time order) - on every embedded graph backend. Every
relationship's first_seen must be the earliest and its last_seen the latest time it was seen,
every vertex's first_seen the earliest: compared with a model of the whole stream.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib.events import Transaction
from chalicelib.wiring import open_embedded_graph
from tests.contract.test_graph_store import model_of

ROOT = Path(__file__).resolve().parents[2]
RULES = "version: 1\nrules:\n  - {id: busy, kind: velocity, key: account_id, window: 10m, threshold: 3}\n"


def stream(n: int = 480, seed: int = 8) -> list[Transaction]:
    """Thirty accounts over three days sharing e-mails, phones and devices in small groups."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    events = []
    for i in range(n):
        a = rng.randrange(30)
        events.append(Transaction(
            event_id=f"t{i}", ts=start + timedelta(minutes=rng.randrange(3 * 24 * 60)), account_id=f"acct-{a}",
            amount=rng.randint(1, 900), email=f"u{a // 3}@x", phone=f"+49{a // 2}", device_id=f"d{a // 4}",
            ip=f"10.0.0.{rng.randrange(12)}", merchant_id=f"m{rng.randrange(8)}"))
    return events


def write_events(path: Path, events: list[Transaction]) -> Path:
    path.write_text("".join(json.dumps(e.model_dump(mode="json")) + "\n" for e in events))
    return path


def replay(events: Path, data_dir: Path, rules: Path, backend: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "chalicelib", "replay", "--rules", str(rules), "--events", str(events),
         "--data-dir", str(data_dir), "--out", str(events.with_suffix(".hits.jsonl")), "--batch-size", "25"],
        cwd=ROOT, env={**os.environ, "GRAPH_BACKEND": backend}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def finish(process: subprocess.Popen[str]) -> dict[str, object]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return dict(json.loads(out.strip().splitlines()[-1]))


def assert_graph_matches_model(data_dir: Path, events: list[Transaction]) -> None:
    graph = open_embedded_graph(data_dir)
    assert graph is not None
    try:
        vertices, relationships = graph.vertex_times(), graph.relationship_times()
    finally:
        graph.close()
    expected_vertices, expected_relationships = model_of(events)
    wrong = {ref: (relationships.get(ref), times) for ref, times in expected_relationships.items()
             if relationships.get(ref) != times}
    assert not wrong, f"{len(wrong)} relationships differ from the model, e.g. {next(iter(wrong.items()))}"
    assert relationships.keys() == expected_relationships.keys()
    assert vertices == expected_vertices


@pytest.mark.parametrize("backend", ["sqlite", "gremlite"])
def test_two_consecutive_processes_with_redelivery(backend: str, tmp_path: Path) -> None:
    events = stream()
    rng = random.Random(1)
    first, second = events[:300], events[200:]  # the second run re-sends 100 of the first's events
    rng.shuffle(first)
    rng.shuffle(second)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    data = tmp_path / "data"
    assert finish(replay(write_events(tmp_path / "first.jsonl", first), data, rules, backend))["accepted"] == 300
    assert finish(replay(write_events(tmp_path / "second.jsonl", second), data, rules, backend))["accepted"] == 180
    assert_graph_matches_model(data, events)


@pytest.mark.parametrize("backend", ["sqlite", "gremlite"])
def test_two_concurrent_processes(backend: str, tmp_path: Path) -> None:
    events = stream()
    halves = [events[0::2], events[1::2]]
    for i, half in enumerate(halves):
        random.Random(i).shuffle(half)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    data = tmp_path / "data"
    data.mkdir()
    running = [replay(write_events(tmp_path / f"half{i}.jsonl", half), data, rules, backend)
               for i, half in enumerate(halves)]
    results = [finish(p) for p in running]
    assert sum(int(str(r["accepted"])) for r in results) == len(events)
    assert_graph_matches_model(data, events)
