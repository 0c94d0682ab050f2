"""The engine on the InfluxDB store agrees with the brute-force oracle of DESIGN.md, however the
stream is cut into batches and whatever is redelivered (a smaller Hypothesis profile than the
SQLite property tests: every example runs against the real influxd)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.events import Transaction
from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource
from chalicelib.stores import HitSink
from chalicelib.stores.influx import InfluxConnection, InfluxTimeSeriesStore
from fraudtools.testing.reference import assert_hits_agree as assert_agrees
from fraudtools.testing.reference import reference_hits as oracle_hits
from tests.fakes import FlakyHitSink, MemoryDeadLetterSink, MemoryHitSink, raw_records
from tests.property.test_engine_vs_oracle import RULESET, DeliveryMachine
from tests.strategies import cuts, split, streams

EXAMPLES = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
_server: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _server_url(influx_url: str) -> Iterator[None]:
    _server["url"] = influx_url  # Hypothesis bodies cannot take function-scoped fixtures
    yield


def influx_pipeline(hits: HitSink) -> Pipeline:
    store = InfluxTimeSeriesStore(InfluxConnection(_server["url"], f"p_{uuid.uuid4().hex[:12]}"))
    store.create_database()
    return Pipeline(StaticRulesSource(RULESET), store, hits, MemoryDeadLetterSink())


def stored(pipeline: Pipeline) -> list[tuple[Any, ...]]:
    assert isinstance(pipeline.timeseries, InfluxTimeSeriesStore)
    return pipeline.timeseries.dump()


def run_in_batches(stream: list[Transaction], points: list[int]) -> tuple[Pipeline, MemoryHitSink]:
    sink = MemoryHitSink()
    pipeline = influx_pipeline(sink)
    for batch in split(raw_records(stream), points):
        report = pipeline.process(batch)
        assert report.failed_from is None, report.error
    return pipeline, sink


@EXAMPLES
@given(st.data())
def test_engine_on_influx_matches_oracle_for_any_batching(data: st.DataObject) -> None:
    stream = data.draw(streams())
    pipeline, sink = run_in_batches(stream, data.draw(cuts(len(stream))))
    assert_agrees(sink.hits.values(), oracle_hits(RULESET, stream))
    pipeline.close()


@EXAMPLES
@given(st.data())
def test_replaying_any_part_of_any_batch_changes_nothing_on_influx(data: st.DataObject) -> None:
    stream = data.draw(streams())
    points = data.draw(cuts(len(stream)))
    pipeline, sink = run_in_batches(stream, points)
    before, hits = stored(pipeline), dict(sink.hits)
    batch = data.draw(st.sampled_from(split(raw_records(stream), points)))
    start = data.draw(st.integers(0, len(batch) - 1))
    end = data.draw(st.integers(start + 1, len(batch)))
    report = pipeline.process(batch[start:end])
    assert report.accepted == 0 and report.rejudged == 0 and report.new_hits == []
    assert stored(pipeline) == before
    assert sink.hits == hits
    pipeline.close()


class InfluxDeliveryMachine(DeliveryMachine):
    """New batches, redeliveries and hit writes failing half-way, on the InfluxDB store."""

    def make_pipeline(self, sink: FlakyHitSink) -> Pipeline:
        return influx_pipeline(sink)

    def teardown(self) -> None:
        if hasattr(self, "pipeline"):
            self.pipeline.close()


TestInfluxDelivery = InfluxDeliveryMachine.TestCase
TestInfluxDelivery.settings = settings(max_examples=8, stateful_step_count=8, deadline=None,
                                       suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True, scope="module")
def _module_server(influx_url: str) -> None:
    _server["url"] = influx_url
