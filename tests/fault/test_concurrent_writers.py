"""Two `replay` processes on one data directory at the same time, each with one shard-like half of
a stream whose keys overlap (shared IPs, devices, merchants; with the by-event split, the same
accounts too). Whatever the interleaving: no corruption, every event stored and judged exactly
once, every hit written exactly once, every dead letter once, nothing doubled in the graph.

Micro-rule hits are a function of arrival order alone, so they must equal a single-process
replay of the events in the arrival order the two writers produced together. Macro-rule hits
depend on how batches interleave on the graph; they are checked for exactly-once only.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from tests.fault.conftest import BATCH_SIZE, CleanRun, Stream
from tests.fault.harness import (
    MACRO_KINDS,
    PROFILE,
    STORE_FILES,
    DataDir,
    Replay,
    envelopes,
    event_id_of,
    jsonl_by_id,
    stored_event_ids,
    stored_events,
)

pytestmark = pytest.mark.fault

# (split, whether the first writer is SIGKILLed a third of the way in and rerun while the other goes on)
CASES = ([("by-event", False), ("by-account", True), ("by-event", True)] if PROFILE == "ci"
         else [("by-event", True)])


#: Batches of one: the pipeline is fast enough that two processes of 25-event batches can finish one
#: after the other within Python's start-up jitter; more commits keep them overlapping.
CONCURRENT_BATCH_SIZE = 1


def wait_until_both_have_stored(data: Path, shard_of_event: dict[str | None, int], runs: list[Replay]) -> None:
    """Both writers are under way (each has committed a batch) before one of them is killed."""
    deadline = time.monotonic() + 120
    while stored_events(data) == 0 or {shard_of_event.get(e) for e in stored_event_ids(data)} < {0, 1}:
        assert all(run.process.poll() is None for run in runs), "a writer ended before both had started"
        assert time.monotonic() < deadline, "the two writers never both stored an event"
        time.sleep(0.005)


def shard_of(line: str, split: str, number: int) -> int:
    item = json.loads(line) if event_id_of(line) is not None else None
    if item is None:
        return number % 2  # poison lines go to both shards in turn
    key = item["account_id"] if split == "by-account" else item["event_id"]
    return zlib.crc32(key.encode()) % 2


@pytest.mark.parametrize(("split", "kill"), CASES, ids=[f"{s}{'-one-killed' if k else ''}" for s, k in CASES])
def test_two_concurrent_replays_on_one_data_dir(split: str, kill: bool, stream: Stream, clean_run: CleanRun,
                                                tmp_path: Path) -> None:
    shards: list[list[tuple[int, str]]] = [[], []]
    for number, line in enumerate(stream.lines, 1):
        shards[shard_of(line, split, number)].append((number, line))
    assert all(len(s) > len(stream.lines) // 4 for s in shards)
    files = []
    for index, shard in enumerate(shards):
        files.append(tmp_path / f"shard-{index}.jsonl")
        files[-1].write_text(envelopes(shard))
    shard_of_event = {event_id_of(line): index for index, shard in enumerate(shards) for _, line in shard}

    data = tmp_path / "data"  # fresh: both processes also race to create the stores
    outs = [[tmp_path / f"hits-{index}.jsonl"] for index in range(2)]
    runs = [Replay.start(files[index], data, outs[index][0], CONCURRENT_BATCH_SIZE) for index in range(2)]
    stored_by_killed_run = 0
    if kill:
        wait_until_both_have_stored(data, shard_of_event, runs)
        runs[0].kill_when_stored(data, len(stream.event_ids) // 3, delay_ms=40)
        stored_by_killed_run = sum(1 for e in stored_event_ids(data) if shard_of_event[e] == 0)
        outs[0].append(tmp_path / "hits-0-rerun.jsonl")
        runs[0] = Replay.start(files[0], data, outs[0][-1], CONCURRENT_BATCH_SIZE)
    summaries = [run.finish() for run in runs]
    after = DataDir.read(data)

    order = [shard_of_event[e] for e in after.arrival_order()]
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    print(f"{split}{' with a kill' if kill else ''}: the writers took turns {switches} times; the killed run "
          f"had stored {stored_by_killed_run} events")
    assert switches >= 2, "the two processes did not run at the same time: nothing concurrent was tested"

    assert after.integrity == dict.fromkeys(STORE_FILES, "ok")
    # every event stored once and judged; the reports add up to the stream
    assert set(after.events) == stream.event_ids
    assert max(after.event_times.values()) == 1
    assert after.unjudged() == []
    repeated = len(stream.lines) - stream.poison - len(stream.event_ids)
    assert sum(s["accepted"] for s in summaries) == len(stream.event_ids) - stored_by_killed_run
    assert sum(s["duplicates"] for s in summaries) == repeated + stored_by_killed_run
    assert sum(s["poison"] for s in summaries) == stream.poison
    assert len(after.dead_letters) == stream.poison and max(after.dead_letter_times.values()) == 1

    # every hit written exactly once, to the data directory's hit sink both writers share (each
    # `--out` is a copy of that sink as the run finished), and once as a graph edge
    hits, times = jsonl_by_id(data / "hits.jsonl", "hit_id")
    assert max(times.values(), default=1) == 1, "a hit was written twice"
    new_in_runs = sum(sum(summary["hits"].values()) for summary in summaries)
    if kill:  # the killed run's hits written before the kill are in the sink, not in any summary
        assert len(hits) >= new_in_runs
    else:
        assert len(hits) == new_in_runs
    copies = [jsonl_by_id(writer_outs[-1], "hit_id")[0] for writer_outs in outs]
    assert all(set(copy) <= set(hits) for copy in copies)
    assert set().union(*copies) == set(hits)
    assert after.graph.doubled() == {}
    assert set(after.graph.hit_edges) == set(hits)

    # the graph holds the same entities as a single clean run of the whole stream
    assert set(after.graph.vertices) == set(clean_run.data.graph.vertices)
    assert set(after.graph.relationships) == set(clean_run.data.graph.relationships)
    assert after.graph.use_counts() == clean_run.data.graph.use_counts()  # every event counted once

    # micro hits: exactly those of one process replaying the stream in the arrival order stored
    text_of = {event_id_of(line): line for line in stream.lines}
    in_arrival_order = tmp_path / "arrival-order.jsonl"
    in_arrival_order.write_text(envelopes(enumerate((text_of[e] for e in after.arrival_order()), 1)))
    reference_out = tmp_path / "reference-hits.jsonl"
    Replay.start(in_arrival_order, tmp_path / "reference", reference_out, BATCH_SIZE).finish()
    reference, _ = jsonl_by_id(reference_out, "hit_id")
    micro = {h: hit for h, hit in hits.items() if hit["kind"] not in MACRO_KINDS}
    assert micro == {h: hit for h, hit in reference.items() if hit["kind"] not in MACRO_KINDS}
    assert micro, "no micro hits to compare"


def _open_stores(data_dir: str, start: Any, results: Any) -> None:
    from chalicelib.stores import GremliteConnection, SQLiteGraphStore, SQLiteTimeSeriesStore

    start.wait()
    try:
        GremliteConnection(Path(data_dir) / "graph.sqlite").close()
        SQLiteGraphStore(Path(data_dir) / "entity-graph.sqlite").close()
        SQLiteTimeSeriesStore(Path(data_dir) / "timeseries.sqlite").close()
        results.put("ok")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_creating_the_stores_at_the_same_instant(tmp_path: Path) -> None:
    """Two processes that open a new data directory at once both get working stores."""
    context = multiprocessing.get_context("fork")
    failures = []
    for attempt in range(20):
        data_dir = tmp_path / f"data-{attempt}"
        start, results = context.Barrier(2), context.Queue()
        processes = [context.Process(target=_open_stores, args=(str(data_dir), start, results)) for _ in range(2)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        failures += [outcome for outcome in (results.get(timeout=5) for _ in processes) if outcome != "ok"]
    assert failures == []


def test_concurrent_replays_of_one_stream_write_every_hit_once(stream: Stream, clean_run: CleanRun,
                                                               tmp_path: Path) -> None:
    """Several replays of the *same* records into one fresh data directory (issue 18, item 8): each
    judges events another stored and has not marked yet, so they find the same hits; the shared
    hit sink holds each once and the summaries add up to the distinct hits."""
    writers = 3
    events = tmp_path / "stream.jsonl"
    events.write_text(envelopes(enumerate(stream.lines, 1)))
    data = tmp_path / "data"
    runs = [Replay.start(events, data, tmp_path / f"hits-{index}.jsonl", CONCURRENT_BATCH_SIZE)
            for index in range(writers)]
    summaries = [run.finish() for run in runs]
    after = DataDir.read(data)

    accepted = [s["accepted"] for s in summaries]
    print(f"{writers} writers accepted {accepted} events and wrote {[sum(s['hits'].values()) for s in summaries]} "
          "new hits")
    assert sum(1 for n in accepted if n) >= 2, "one writer stored everything: nothing concurrent was tested"
    assert sum(accepted) == len(stream.event_ids) == len(after.events)
    assert after.unjudged() == []

    hits, times = jsonl_by_id(data / "hits.jsonl", "hit_id")
    assert [h for h, n in times.items() if n > 1] == [], "a hit was written twice"
    assert sum(sum(s["hits"].values()) + sum(s.get("shadow_hits", {}).values()) for s in summaries) == len(hits)
    assert set(after.graph.hit_edges) == set(hits) and after.graph.doubled() == {}
    # every writer stored in stream order, so the micro hits are the clean run's
    micro = {h: hit for h, hit in hits.items() if hit["kind"] not in MACRO_KINDS}
    assert micro == {h: hit for h, hit in clean_run.hits.items() if hit["kind"] not in MACRO_KINDS}
    dead_letters, dead_letter_times = jsonl_by_id(data / "dead-letters.jsonl", "record_id")
    assert len(dead_letters) == stream.poison and max(dead_letter_times.values()) == 1


def _append_rounds(path: str, writer: int, rounds: int, start: Any, results: Any) -> None:
    from chalicelib.stores.jsonl import JsonLinesFile

    sink = JsonLinesFile(path, "id")
    start.wait()
    written = 0
    for round_number in range(rounds):
        # every writer offers the same ids of the round, and one of its own
        offered = [{"id": f"r{round_number}-{k}", "by": writer} for k in range(5)]
        written += len(sink.append([*offered, {"id": f"own-{writer}-{round_number}", "by": writer}]))
    results.put(written)


def test_processes_appending_to_one_jsonl_sink_write_each_id_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    path, writers, rounds = tmp_path / "hits.jsonl", 4, 200
    start, results = context.Barrier(writers), context.Queue()
    processes = [context.Process(target=_append_rounds, args=(str(path), w, rounds, start, results))
                 for w in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    written = [results.get(timeout=5) for _ in processes]
    ids = [json.loads(line)["id"] for line in path.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == rounds * 5 + writers * rounds
    assert sum(written) == len(ids)  # what each writer says it wrote adds up to the file
