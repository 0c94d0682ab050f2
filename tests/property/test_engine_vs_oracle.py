"""The engine agrees with the brute-force oracle of DESIGN.md on any drawn stream, however the
stream is cut into batches, and replaying any batch (whole or in part) changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chalicelib.events import Transaction
from chalicelib.pipeline import Pipeline
from chalicelib.rules import load_rules_text
from fraudtools.testing.reference import assert_hits_agree as assert_agrees
from fraudtools.testing.reference import reference_hits as oracle_hits
from tests.fakes import FlakyHitSink, MemoryHitSink, memory_pipeline, raw_records
from tests.strategies import BASE, cuts, property_ruleset, split, streams, transactions

RULESET = property_ruleset()
ALL_KINDS = {"velocity", "fan_out", "sum_over", "amount_spike", "first_seen", "geo_velocity", "list_match",
             "new_key_fan_out"}


def test_property_rules_cover_every_kind() -> None:
    assert {r.kind for r in RULESET.rules} == ALL_KINDS


def run_in_batches(stream: list[Transaction], points: list[int]) -> tuple[Any, MemoryHitSink]:
    sink = MemoryHitSink()
    pipeline = memory_pipeline(RULESET, sink)
    for batch in split(raw_records(stream), points):
        report = pipeline.process(batch)
        assert report.failed_from is None, report.error
    return pipeline, sink


@given(st.data())
def test_engine_matches_oracle_for_any_batching(data: st.DataObject) -> None:
    stream = data.draw(streams())
    points = data.draw(cuts(len(stream)))
    _, sink = run_in_batches(stream, points)
    assert_agrees(sink.hits.values(), oracle_hits(RULESET, stream))


@given(st.data())
def test_batching_changes_neither_store_nor_hits(data: st.DataObject) -> None:
    stream = data.draw(streams())
    one, hits_one = run_in_batches(stream, data.draw(cuts(len(stream))))
    two, hits_two = run_in_batches(stream, data.draw(cuts(len(stream))))
    assert one.timeseries.dump() == two.timeseries.dump()
    assert hits_one.hits == hits_two.hits  # whole hit records, evidence included


@given(st.data())
def test_replaying_any_part_of_any_batch_changes_nothing(data: st.DataObject) -> None:
    stream = data.draw(streams())
    points = data.draw(cuts(len(stream)))
    pipeline, sink = run_in_batches(stream, points)
    stored, hits = pipeline.timeseries.dump(), dict(sink.hits)

    batches = split(raw_records(stream), points)
    batch = data.draw(st.sampled_from(batches))
    start = data.draw(st.integers(0, len(batch) - 1))
    end = data.draw(st.integers(start + 1, len(batch)))
    report = pipeline.process(batch[start:end])

    assert report.accepted == 0 and report.rejudged == 0 and report.new_hits == [] and not report.hits
    assert report.duplicates == end - start
    assert pipeline.timeseries.dump() == stored
    assert sink.hits == hits


WARM_UP_RULES = load_rules_text("""
version: 1
rules:
  - {id: new-ip-fanout, kind: new_key_fan_out, key: ip, distinct: account_id, window: 10m, burst: 2m,
     threshold: 1, max_history: 1}
  - {id: new-device-big, kind: new_key_fan_out, key: device_id, distinct: ip, window: 5m, burst: 1m,
     threshold: 0, where: [{field: amount, op: ge, value: 100}]}
  - {id: velocity-acct, kind: velocity, key: account_id, window: 2m, threshold: 2}
""", name="warm-up-rules.yaml")


@st.composite
def observed_streams(draw: st.DrawFn) -> list[Transaction]:
    """A stream whose first event (the store's observation start) lies anywhere from 15 minutes
    before to 15 minutes after the others' range start, on the 15 s grid the events use or 1 ms
    beside it, so window starts meet the observation start exactly, just before and just after."""
    opening = draw(st.integers(-60, 60)) * 15_000 + draw(st.sampled_from([0, 0, -1, 1, 500]))
    first = draw(transactions(ids=st.just("opening")))
    first = first.model_copy(update={"ts": BASE + timedelta(milliseconds=opening)})
    return [first, *draw(streams(max_size=40))]


@given(st.data())
def test_warm_up_matches_oracle_for_any_observation_start_and_batching(data: st.DataObject) -> None:
    """new_key_fan_out fires only once observation covers its window: engine == oracle whatever
    the observation start and the cuts, and the observation start is the first arrival's time."""
    stream = data.draw(observed_streams())
    points = data.draw(cuts(len(stream)))
    sink = MemoryHitSink()
    pipeline = memory_pipeline(WARM_UP_RULES, sink)
    for batch in split(raw_records(stream), points):
        assert pipeline.process(batch).failed_from is None
    assert pipeline.timeseries.observed_since() == stream[0].ts_ms
    assert_agrees(sink.hits.values(), oracle_hits(WARM_UP_RULES, stream))


class DeliveryMachine(RuleBasedStateMachine):
    """Lambda-like delivery: new batches, redeliveries of earlier records, and hit writes that
    fail half-way (the batch is then redelivered from the reported record)."""

    @initialize(fail_on=st.sets(st.integers(1, 12), max_size=4))
    def start(self, fail_on: set[int]) -> None:
        self.sink = FlakyHitSink(fail_on)
        self.pipeline = self.make_pipeline(self.sink)
        self.delivered: list[Any] = []  # raw records in first-delivery order
        self.first_seen: list[Transaction] = []

    def make_pipeline(self, sink: FlakyHitSink) -> Pipeline:
        """The pipeline under test (a subclass runs the same machine on another store)."""
        return memory_pipeline(RULESET, sink)

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
        before = self.pipeline.timeseries.dump()
        self._deliver(self.delivered[start:end])
        assert self.pipeline.timeseries.dump() == before

    @invariant()
    def hits_match_oracle(self) -> None:
        if hasattr(self, "sink"):
            assert_agrees(self.sink.hits.values(), oracle_hits(RULESET, self.first_seen))

    @invariant()
    def every_event_judged_once_stored(self) -> None:
        if hasattr(self, "pipeline"):
            assert all(row[1] == 1 for row in self.pipeline.timeseries.dump())


TestDelivery = DeliveryMachine.TestCase
