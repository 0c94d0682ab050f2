"""TIMESERIES_BACKEND=influxdb gives the same hits as the SQLite store: the reference producer's
550 records and a simulated demo stream, replayed through the pipeline against a real influxd."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from chalicelib.hits import Hit
from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource, load_rules_file
from chalicelib.settings import Settings
from chalicelib.stores import SQLiteGraphStore, SQLiteTimeSeriesStore, TimeSeriesStore
from chalicelib.stores.influx import InfluxTimeSeriesStore
from chalicelib.wiring import build_timeseries_store
from fraudtools.cli import stream_through
from fraudtools.record_files import StreamRecord, records_from_lines
from fraudtools.simulate import iter_lines, simulate
from tests.conftest import PROJECT, SEED_SAMPLE
from tests.fakes import MemoryDeadLetterSink, MemoryHitSink


def replay(store: TimeSeriesStore, records: list[StreamRecord], graph_path: Path, batch_size: int) -> dict[str, Hit]:
    hits = MemoryHitSink()
    pipeline = Pipeline(StaticRulesSource(load_rules_file(PROJECT / "rules.yaml")), store, hits,
                        MemoryDeadLetterSink(), graph=SQLiteGraphStore(graph_path))
    try:
        totals = stream_through(pipeline, records, batch_size)
    finally:
        pipeline.close()
    assert totals.events == len(records)
    return hits.hits


def influx(url: str) -> TimeSeriesStore:
    """The store TIMESERIES_BACKEND=influxdb builds, on a fresh database."""
    settings = Settings.from_env({"TIMESERIES_BACKEND": "influxdb", "INFLUXDB_URL": url,
                                  "INFLUXDB_DATABASE": f"replay_{uuid.uuid4().hex[:10]}"})
    store = build_timeseries_store(settings)
    assert isinstance(store, InfluxTimeSeriesStore)
    store.create_database()
    return store


@pytest.mark.parametrize("batch_size", [100, 37])
def test_seed_producer_records_give_the_same_hits(influx_url: str, tmp_path: Path, batch_size: int) -> None:
    records = list(records_from_lines(SEED_SAMPLE.read_text().splitlines(), "auto"))
    assert len(records) == 550
    expected = replay(SQLiteTimeSeriesStore(tmp_path / "ts.sqlite"), records, tmp_path / "g1.sqlite", batch_size)
    got = replay(influx(influx_url), records, tmp_path / "g2.sqlite", batch_size)
    assert expected, "the sample must produce hits, or the comparison proves nothing"
    assert got == expected


def test_a_simulated_demo_stream_gives_the_same_hits(influx_url: str, tmp_path: Path) -> None:
    stream = simulate(seed=7, accounts=300, days=1.0)
    records = list(records_from_lines(list(iter_lines(stream)), "native"))
    expected = replay(SQLiteTimeSeriesStore(tmp_path / "ts.sqlite"), records, tmp_path / "g1.sqlite", 200)
    got = replay(influx(influx_url), records, tmp_path / "g2.sqlite", 200)
    assert len({h.rule_id for h in expected.values()}) >= 5
    assert got == expected
