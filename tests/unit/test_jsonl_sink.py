"""The JSON-lines sinks when several processes append to one file (replay runs or handler
containers sharing a data dir): every line stays whole."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from chalicelib.stores.jsonl import JsonLinesFile


def _append_many(path: str, writer: int) -> None:
    sink = JsonLinesFile(path, "id")
    for batch in range(20):
        sink.append({"id": f"{writer}-{batch}-{i}", "pad": str(writer) * 3000} for i in range(10))


def test_concurrent_appends_never_tear_a_line(tmp_path: Path) -> None:
    path = tmp_path / "hits.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(path), n)) for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    items = [json.loads(line) for line in lines[:-1]]
    assert sorted(item["id"] for item in items) == sorted(
        f"{w}-{b}-{i}" for w in range(3) for b in range(20) for i in range(10))


def test_an_append_after_a_torn_line_ends_it_and_knows_the_ids_before_it(tmp_path: Path) -> None:
    path = tmp_path / "hits.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b", "pa')  # a writer killed mid-line
    sink = JsonLinesFile(path, "id")
    assert sink.append([{"id": "a"}, {"id": "c"}]) == ["c"]
    assert path.read_text() == '{"id": "a"}\n{"id": "b", "pa\n{"id":"c"}\n'
    assert [item["id"] for item in sink.read()] == ["a", "c"]
    other = JsonLinesFile(path, "id")  # a second writer, opened later, catches up on its first append
    assert other.append([{"id": "c"}, {"id": "d"}]) == ["d"]
    assert sink.append([{"id": "d"}, {"id": "e"}]) == ["e"]  # and the first learns of d
    assert [item["id"] for item in sink.read()] == ["a", "c", "d", "e"]
