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
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chalicelib.events import Transaction
from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource
from chalicelib.stores import HitSink
from chalicelib.stores.influx import InfluxConnection, InfluxTimeSeriesStore
from tests.fakes import FlakyHitSink, MemoryDeadLetterSink, MemoryHitSink, raw_records
from tests.oracle import assert_agrees, oracle_hits
from tests.property.test_engine_vs_oracle import RULESET
from tests.strategies import cuts, split, streams, transactions

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


class InfluxDeliveryMachine(RuleBasedStateMachine):
    """New batches, redeliveries and hit writes failing half-way, on the InfluxDB store."""

    @initialize(fail_on=st.sets(st.integers(1, 12), max_size=4))
    def start(self, fail_on: set[int]) -> None:
        self.sink = FlakyHitSink(fail_on)
        self.pipeline = influx_pipeline(self.sink)
        self.delivered: list[Any] = []
        self.first_seen: list[Transaction] = []

    def _deliver(self, records: list[Any]) -> None:
        while records:
            report = self.pipeline.process(records)
            if report.failed_from is None:
                return
            records = [r for r in records if int(r.sequence_number) >= int(report.failed_from)]

    @rule(events=st.lists(transactions(ids=st.sampled_from([f"e{i}" for i in range(30)])), min_size=1, max_size=8))
    def deliver_new_batch(self, events: list[Transaction]) -> None:
        records = raw_records(events, first_sequence=len(self.delivered))
        self.delivered.extend(records)
        self.first_seen.extend(events)
        self._deliver(records)

    @precondition(lambda self: bool(self.delivered))
    @rule(data=st.data())
    def redeliver_earlier_records(self, data: st.DataObject) -> None:
        start = data.draw(st.integers(0, len(self.delivered) - 1))
        end = data.draw(st.integers(start + 1, len(self.delivered)))
        before = stored(self.pipeline)
        self._deliver(self.delivered[start:end])
        assert stored(self.pipeline) == before

    @invariant()
    def hits_match_oracle(self) -> None:
        if hasattr(self, "sink"):
            assert_agrees(self.sink.hits.values(), oracle_hits(RULESET, self.first_seen))

    @invariant()
    def every_event_judged_once_stored(self) -> None:
        if hasattr(self, "pipeline"):
            assert all(row[1] == 1 for row in stored(self.pipeline))

    def teardown(self) -> None:
        if hasattr(self, "pipeline"):
            self.pipeline.close()


TestInfluxDelivery = InfluxDeliveryMachine.TestCase
TestInfluxDelivery.settings = settings(max_examples=8, stateful_step_count=8, deadline=None,
                                       suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True, scope="module")
def _module_server(influx_url: str) -> None:
    _server["url"] = influx_url
