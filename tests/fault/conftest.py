from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fault.harness import DataDir, Replay, event_id_of, jsonl_by_id, simulated_lines, with_faults

#: small batches: many batch boundaries (and so many distinct places to die) in a few seconds
BATCH_SIZE = 25


@dataclass(frozen=True)
class Stream:
    path: Path
    lines: list[str]

    @property
    def event_ids(self) -> set[str]:
        return {e for e in map(event_id_of, self.lines) if e is not None}

    @property
    def poison(self) -> int:
        return sum(1 for line in self.lines if event_id_of(line) is None)


@dataclass(frozen=True)
class CleanRun:
    summary: dict[str, Any]
    data: DataDir
    hits: dict[str, dict[str, Any]]


@pytest.fixture(scope="session")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Stream:
    """~1,100 simulated events over a day and a half (a few seconds of replay), with poison lines
    and a repeated event in it."""
    tmp = tmp_path_factory.mktemp("fault-stream")
    lines = with_faults(simulated_lines(tmp, accounts=200, days=1.5))
    path = tmp / "stream.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return Stream(path, lines)


@pytest.fixture(scope="session")
def clean_run(stream: Stream, tmp_path_factory: pytest.TempPathFactory) -> CleanRun:
    """The stream replayed once, start to end, into a fresh data directory: the reference."""
    tmp = tmp_path_factory.mktemp("fault-clean")
    out = tmp / "hits.jsonl"
    summary = Replay.start(stream.path, tmp / "data", out, BATCH_SIZE).finish()
    hits, times = jsonl_by_id(out, "hit_id")
    assert max(times.values()) == 1 and hits, "the clean run itself doubled or found no hits"
    return CleanRun(summary, DataDir.read(tmp / "data"), hits)
