"""The window state a warm container keeps across batches changes no answer: the engine agrees
with the brute-force oracle over many batches, with a memory cap so small keys are evicted all
the time, with a container that restarts cold mid-stream, with two pipelines (two shards) writing
the same keys into one store in turn, with events later than anything held, with delta reads
that are turned into reloads, and with hit writes that fail half-way (the batch is redelivered).
Hit records (evidence included) equal those of a container that keeps nothing between batches."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.events import RawRecord, Transaction
from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource
from chalicelib.rules.windows import LATENESS_MARGIN_MS, WindowCache, row_bytes
from chalicelib.stores import HitSink, SQLiteTimeSeriesStore
from fraudtools.testing.reference import assert_hits_agree as assert_agrees
from fraudtools.testing.reference import reference_hits as oracle_hits
from tests.fakes import FlakyHitSink, MemoryDeadLetterSink, MemoryHitSink, raw_records
from tests.strategies import cuts, property_ruleset, split, streams

RULESET = property_ruleset()


@dataclass(frozen=True)
class Setup:
    cache_bytes: int  # 0: nothing kept; tiny: keys evicted after every batch; a few rows; plenty
    lateness_ms: int  # 0: rows leave as soon as every window has passed them
    delta_span: int  # small: held keys are often reloaded instead of read as a delta
    shards: int  # pipelines writing into one store, batch by batch in turn
    restart_at: int | None  # batch index before which every pipeline restarts cold
    arrival_margin: int | None = None  # None: exact arrival; else delta reads reach below marks, rows by id


setups = st.builds(
    Setup,
    cache_bytes=st.sampled_from([0, 1, 6 * row_bytes(8), 40 * row_bytes(8), 2**30]),
    lateness_ms=st.sampled_from([0, 60_000, LATENESS_MARGIN_MS]),
    delta_span=st.sampled_from([2, 10, 50_000]),
    shards=st.sampled_from([1, 2]),
    restart_at=st.none() | st.integers(1, 6),
    arrival_margin=st.sampled_from([None, None, 0, 3, 10**6]),
)


def pipeline(path: Path, setup: Setup, hits: HitSink) -> Pipeline:
    made = Pipeline(StaticRulesSource(RULESET), SQLiteTimeSeriesStore(path), hits, MemoryDeadLetterSink())
    made.windows = WindowCache(setup.cache_bytes, lateness_margin_ms=setup.lateness_ms,
                               delta_span=setup.delta_span, arrival_margin=setup.arrival_margin)
    return made


def deliver(target: Pipeline, records: list[RawRecord]) -> None:
    """As Lambda does: a failed batch is redelivered from the record the report names."""
    for _ in range(20):
        report = target.process(records)
        if report.failed_from is None:
            return
        records = [r for r in records if int(r.sequence_number) >= int(report.failed_from)]
    raise AssertionError("batch never succeeded")


def run(stream: list[Transaction], points: list[int], setup: Setup, hits: HitSink, root: Path) -> None:
    path = root / "ts.sqlite"
    pipelines = [pipeline(path, setup, hits) for _ in range(setup.shards)]
    for number, batch in enumerate(split(raw_records(stream), points)):
        if number == setup.restart_at:
            for old in pipelines:
                old.close()
            pipelines = [pipeline(path, setup, hits) for _ in range(setup.shards)]
        deliver(pipelines[number % setup.shards], batch)
    for done in pipelines:
        done.close()


def reference_hits(stream: list[Transaction], root: Path) -> dict[str, Any]:
    """Hit records of a container that keeps nothing, one event per batch."""
    sink = MemoryHitSink()
    run(stream, list(range(1, len(stream))), Setup(0, LATENESS_MARGIN_MS, 50_000, 1, None), sink, root)
    return dict(sink.hits)


@given(st.data())
def test_window_state_agrees_with_oracle_in_every_setup(data: st.DataObject) -> None:
    stream = data.draw(streams(max_size=50, max_offset_s=data.draw(st.sampled_from([900, 3600]))))
    points = data.draw(cuts(len(stream)))
    setup = data.draw(setups)
    failures = data.draw(st.sets(st.integers(1, 10), max_size=3))
    sink = FlakyHitSink(failures)
    with tempfile.TemporaryDirectory() as tmp:
        run(stream, points, setup, sink, Path(tmp) / "run")
        assert_agrees(sink.hits.values(), oracle_hits(RULESET, stream))
        assert sink.hits == reference_hits(stream, Path(tmp) / "reference")


@given(st.data())
def test_many_small_batches_carry_state(data: st.DataObject) -> None:
    """Every event its own batch, into one warm container with plenty of memory."""
    stream = data.draw(streams(max_size=60))
    sink = MemoryHitSink()
    setup = Setup(2**30, LATENESS_MARGIN_MS, 50_000, 1, None)
    with tempfile.TemporaryDirectory() as tmp:
        run(stream, list(range(1, len(stream))), setup, sink, Path(tmp))
    assert_agrees(sink.hits.values(), oracle_hits(RULESET, stream))


@given(st.data())
def test_late_events_beyond_what_is_held(data: st.DataObject) -> None:
    """Rows leave memory as soon as every window has passed them; events an hour apart arrive in
    any order, so many windows reach below what is held and are read from the store."""
    stream = data.draw(streams(max_size=50, max_offset_s=3600))
    points = data.draw(cuts(len(stream)))
    sink = MemoryHitSink()
    with tempfile.TemporaryDirectory() as tmp:
        run(stream, points, Setup(2**30, 0, 50_000, 1, None), sink, Path(tmp))
    assert_agrees(sink.hits.values(), oracle_hits(RULESET, stream))


@given(st.data())
def test_two_shards_write_the_same_keys_into_one_store(data: st.DataObject) -> None:
    stream = data.draw(streams(max_size=50))
    points = data.draw(cuts(len(stream)))
    sink = MemoryHitSink()
    with tempfile.TemporaryDirectory() as tmp:
        run(stream, points, Setup(2**30, LATENESS_MARGIN_MS, 50_000, 2, None), sink, Path(tmp))
    assert_agrees(sink.hits.values(), oracle_hits(RULESET, stream))


class WriteTimeArrivalStore(SQLiteTimeSeriesStore):
    """A backend that does not promise one global arrival order (as Timestream does not)."""

    exact_arrival = False


class MarginArrivalStore(SQLiteTimeSeriesStore):
    """A backend whose late-visible writes land at most 3 arrivals below a mark (as InfluxDB's do,
    by its writers' clocks)."""

    exact_arrival = False
    arrival_margin_seq = 3


@given(st.data())
def test_a_store_with_an_arrival_margin_keeps_state_and_agrees_with_the_oracle(data: st.DataObject) -> None:
    stream = data.draw(streams(max_size=50))
    points = data.draw(cuts(len(stream)))
    sink = MemoryHitSink()
    with tempfile.TemporaryDirectory() as tmp:
        made = Pipeline(StaticRulesSource(RULESET), MarginArrivalStore(Path(tmp) / "ts.sqlite"), sink,
                        MemoryDeadLetterSink())
        assert made.windows.arrival_margin == 3 and made.windows.max_bytes > 0
        for batch in split(raw_records(stream), points):
            deliver(made, batch)
        made.close()
    assert_agrees(sink.hits.values(), oracle_hits(RULESET, stream))


def test_no_state_is_kept_where_arrival_is_not_exact(tmp_path: Path) -> None:
    stream = [Transaction(event_id=f"e{i}", ts=1_700_000_000_000 + i * 1000, account_id="a", amount="1",
                          ip="ip-1") for i in range(5)]
    made = Pipeline(StaticRulesSource(RULESET), WriteTimeArrivalStore(tmp_path / "ts.sqlite"), MemoryHitSink(),
                    MemoryDeadLetterSink())
    made.process(raw_records(stream))
    assert made.windows.max_bytes == 0 and made.windows.held_keys == 0
    exact = Pipeline(StaticRulesSource(RULESET), SQLiteTimeSeriesStore(tmp_path / "other.sqlite"),
                     MemoryHitSink(), MemoryDeadLetterSink())
    exact.process(raw_records(stream))
    assert exact.windows.held_keys > 0


@given(streams(max_size=40))
def test_memory_bound_holds_after_every_batch(stream: list[Transaction]) -> None:
    cap = 5 * row_bytes(8)
    with tempfile.TemporaryDirectory() as tmp:
        made = pipeline(Path(tmp) / "ts.sqlite", Setup(cap, LATENESS_MARGIN_MS, 50_000, 1, None), MemoryHitSink())
        for batch in split(raw_records(stream), list(range(3, len(stream), 3))):
            made.process(batch)
            assert made.windows.held_bytes <= cap
            assert made.windows.held_bytes == sum(made.windows._layouts[name[0]].bytes_of(len(k.rows), k.slimmed)
                                                  for name, k in made.windows._keys.items())
        made.close()
