"""The warm-up boundary (DESIGN.md, Rule semantics): a rule whose kind `needs_full_history`
(`new_key_fan_out`) is judged on an event only when the store's observation began no later than
the start of the event's window, `observed_since <= event.ts - window`. Exactly at the start it
fires; a millisecond later it does not - in the pipeline, the oracle and `explain` alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.events import Transaction
from chalicelib.explanation import explain_event
from chalicelib.rules import load_rules_text
from chalicelib.rules.new_key_fan_out import NewKeyFanOutRule
from fraudtools.testing.harness import MemoryHitSink
from fraudtools.testing.reference import reference_hits
from tests.fakes import memory_pipeline, raw_records

RULES = load_rules_text("""
version: 1
rules:
  - {id: new-payee, kind: new_key_fan_out, key: merchant_id, distinct: account_id, window: 1d, burst: 1h,
     threshold: 2}
  - {id: busy-payee, kind: fan_out, key: merchant_id, distinct: account_id, window: 1h, threshold: 2}
""", name="warm-up.yaml")
AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=1)


def burst() -> list[Transaction]:
    """Three customers pay a payee nobody paid before within an hour; the third is judged at AT."""
    return [Transaction(event_id=f"pay-{n}", ts=AT - timedelta(minutes=30 - 15 * n), account_id=f"c{n}",
                        amount=300, merchant_id="p-new") for n in range(3)]


def opening(ts: datetime) -> Transaction:
    """The store's first event: another customer paying another merchant (in no window of the payee)."""
    return Transaction(event_id="first", ts=ts, account_id="c-other", amount=10, merchant_id="m-other")


def pipeline_hits(stream: list[Transaction], cuts: int = 1) -> set[tuple[str, str]]:
    sink = MemoryHitSink()
    pipeline = memory_pipeline(RULES, sink)
    records = raw_records(stream)
    size = -(-len(records) // cuts)
    for start in range(0, len(records), size):
        assert pipeline.process(records[start:start + size]).failed_from is None
    assert pipeline.timeseries.observed_since() == stream[0].ts_ms
    return {(h.rule_id, h.event_id) for h in sink.hits.values()}


@pytest.mark.parametrize("cuts", [1, 2, 4])
def test_observation_exactly_at_the_window_start_fires(cuts: int) -> None:
    stream = [opening(AT - WINDOW), *burst()]
    assert ("new-payee", "pay-2") in pipeline_hits(stream, cuts)
    assert ("new-payee", "pay-2") in reference_hits(RULES, stream)


@pytest.mark.parametrize("cuts", [1, 2, 4])
def test_observation_one_millisecond_later_is_still_warming_up(cuts: int) -> None:
    stream = [opening(AT - WINDOW + timedelta(milliseconds=1)), *burst()]
    hits = pipeline_hits(stream, cuts)
    assert ("new-payee", "pay-2") not in hits
    assert ("busy-payee", "pay-2") in hits  # kinds that do not need the whole history are judged at once
    assert ("new-payee", "pay-2") not in reference_hits(RULES, stream)


def test_a_stream_younger_than_the_window_never_fires_however_busy_the_key() -> None:
    assert not {hit for hit in pipeline_hits(burst()) if hit[0] == "new-payee"}
    assert not {pair for pair in reference_hits(RULES, burst()) if pair[0] == "new-payee"}


def test_arrival_not_time_sets_the_observation_start() -> None:
    """An event stamped 30 days back that arrives after the first does not start the observation earlier."""
    late_old = opening(AT - 2 * WINDOW).model_copy(update={"event_id": "old-but-late"})
    stream = [*burst()[:1], late_old, *burst()[1:]]
    assert ("new-payee", "pay-2") not in pipeline_hits(stream)
    assert ("new-payee", "pay-2") not in reference_hits(RULES, stream)


def test_explain_says_the_rule_is_warming_up() -> None:
    event, earlier = burst()[-1], burst()[:-1]
    explained = {x.rule_id: x for x in explain_event(RULES, event, earlier, {},
                                                     observed_since=int((AT - WINDOW).timestamp() * 1000) + 1)}
    assert explained["new-payee"].verdict == "no hit"
    assert explained["new-payee"].reason.startswith("warming up: the store has observed events only since "
                                                    "2026-10-31T12:00:00.001Z")
    assert "MISMATCH" not in explained["new-payee"].reason
    covered = {x.rule_id: x for x in explain_event(RULES, event, earlier, {},
                                                   observed_since=int((AT - WINDOW).timestamp() * 1000))}
    assert "warming up" not in covered["new-payee"].reason
    assert covered["new-payee"].aggregate == 3  # no hit was passed, so the judge's finding is a MISMATCH
    assert "MISMATCH" in covered["new-payee"].reason


def test_the_kind_declares_it_and_plain_kinds_do_not() -> None:
    assert NewKeyFanOutRule.needs_full_history
    assert not RULES.rule("busy-payee").needs_full_history
    assert RULES.needs_full_history
