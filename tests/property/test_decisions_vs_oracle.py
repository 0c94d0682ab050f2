"""The hold-out property of the decision route: a drawn stream posted one event at a time to
POST /api/decisions (Chalice test client) gives exactly the oracle's hits and exactly the hits the
stream path gives on the same stream; reposting any event gives the same answer and stores
nothing; delivering the stream afterwards on Kinesis (through the handler) finds only duplicates.
With graph rules, one-at-a-time decisions give the stream's hits for one-event batches (graph
rules judge on the graph after the event's own entity writes, in both)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import given
from hypothesis import strategies as st

import app as chalice_app
from chalicelib.decisions import DecisionService
from chalicelib.events import Transaction
from chalicelib.pipeline import Pipeline
from chalicelib.rules import RuleSet, StaticRulesSource, load_rules_text
from chalicelib.stores import SQLiteGraphStore, SQLiteTimeSeriesStore
from chalicelib.stores.decisions import SQLiteDecisionLog
from fraudtools.testing.harness import MemoryDeadLetterSink, MemoryHitSink
from fraudtools.testing.reference import assert_hits_agree as assert_agrees
from fraudtools.testing.reference import reference_hits as oracle_hits
from tests.conftest import PROJECT
from tests.fakes import raw_records
from tests.strategies import cuts, native_json, property_ruleset, split, streams

RULESET = property_ruleset()
GRAPH_RULESET = load_rules_text("""
version: 1
rules:
  - {id: velocity-acct, kind: velocity, key: account_id, window: 2m, threshold: 2, severity: high}
  - {id: shared-device, kind: shared_identifier, via: [device_id, ip], threshold: 1, severity: critical}
  - {id: near-velocity, kind: near_flagged, via: [device_id], hops: 1, window: 1h}
""", name="graph-property-rules.yaml")


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with Client(chalice_app.app, project_dir=str(PROJECT), stage_name="local") as test_client:
        yield test_client


def pipeline_for(ruleset: RuleSet, *, graph: bool) -> tuple[Pipeline, MemoryHitSink]:
    sink = MemoryHitSink()
    return Pipeline(StaticRulesSource(ruleset), SQLiteTimeSeriesStore(":memory:"), sink, MemoryDeadLetterSink(),
                    graph=SQLiteGraphStore(":memory:") if graph else None), sink


def post_each(client: Client, ruleset: RuleSet, stream: list[Transaction], *, graph: bool = False
              ) -> tuple[list[dict[str, Any]], Pipeline, MemoryHitSink, SQLiteDecisionLog]:
    pipeline, sink = pipeline_for(ruleset, graph=graph)
    log = SQLiteDecisionLog(":memory:")
    chalice_app.use_decisions(DecisionService(pipeline, log))
    answers = []
    for event in stream:
        response = client.http.post("/api/decisions", headers={"Content-Type": "application/json"},
                                    body=native_json(event))
        assert response.status_code == 200, response.body
        answers.append(response.json_body)
    return answers, pipeline, sink, log


def decided_hits(answers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {h["hit_id"]: h for answer in answers for h in answer["hits"]}


def without_time(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "took_ms"}


@given(st.data())
def test_decisions_one_at_a_time_give_the_oracles_and_the_streams_hits(client: Client, data: st.DataObject) -> None:
    stream = data.draw(streams())
    answers, pipeline, sink, log = post_each(client, RULESET, stream)
    try:
        hits = decided_hits(answers)
        # the oracle of DESIGN.md, on the stream as posted
        expected = oracle_hits(RULESET, stream)
        assert_agrees([_Hit(h) for h in hits.values()], expected)
        # the stream path on the same stream, cut anyhow: the same hit records, evidence included
        stream_pipeline, stream_sink = pipeline_for(RULESET, graph=False)
        for batch in split(raw_records(stream), data.draw(cuts(len(stream)))):
            assert stream_pipeline.process(batch).failed_from is None
        assert hits == {hit_id: h.to_dict() for hit_id, h in stream_sink.hits.items()}
        assert {hit_id: h.to_dict() for hit_id, h in sink.hits.items()} == hits
        # the decision is the policy's over the event's enforce-mode hits
        for answer in answers:
            assert answer["decision"] == RULESET.policy.decide(
                (h["rule_id"], h["mode"], h["severity"]) for h in answer["hits"])

        # reposting any event: the same answer as its first post, nothing stored
        first = {}
        for event, answer in zip(stream, answers, strict=True):
            first.setdefault(event.event_id, answer)
            assert without_time(answer) == without_time(first[event.event_id])
        stored, kept = pipeline.timeseries.dump(), log.count()  # type: ignore[attr-defined]
        again = data.draw(st.sampled_from(stream))
        response = client.http.post("/api/decisions", headers={"Content-Type": "application/json"},
                                    body=native_json(again))
        assert without_time(response.json_body) == without_time(first[again.event_id])
        assert pipeline.timeseries.dump() == stored and log.count() == kept  # type: ignore[attr-defined]
        assert {hit_id: h.to_dict() for hit_id, h in sink.hits.items()} == hits

        # the same stream delivered later on Kinesis, through the handler: all duplicates
        chalice_app.use_pipeline(pipeline)
        event = client.events.generate_kinesis_event(message_bodies=[native_json(e) for e in stream])
        for number, record in enumerate(event["Records"], 1):
            record["kinesis"]["sequenceNumber"] = str(number)
            record["eventID"] = f"shardId-000000000000:{number}"
        report = client.lambda_.invoke("on_transactions", event).payload
        assert (report["accepted"], report["hits"], report["batchItemFailures"]) == (0, {}, [])
        assert report["duplicates"] == len(stream)
        assert pipeline.timeseries.dump() == stored
        assert {hit_id: h.to_dict() for hit_id, h in sink.hits.items()} == hits
    finally:
        chalice_app.use_pipeline(None)
        pipeline.close()


@given(st.data())
def test_decisions_with_graph_rules_match_one_event_batches_of_the_stream(client: Client,
                                                                         data: st.DataObject) -> None:
    stream = data.draw(streams(max_size=25))
    answers, pipeline, _, _ = post_each(client, GRAPH_RULESET, stream, graph=True)
    try:
        stream_pipeline, stream_sink = pipeline_for(GRAPH_RULESET, graph=True)
        for record in raw_records(stream):
            assert stream_pipeline.process([record]).failed_from is None
        assert decided_hits(answers) == {hit_id: h.to_dict() for hit_id, h in stream_sink.hits.items()}
        stream_pipeline.close()
    finally:
        chalice_app.use_decisions(None)
        pipeline.close()


def test_the_graph_property_can_fire_graph_rules() -> None:
    """The drawn pools do link accounts: a stream exists on which the graph rules fire."""
    base = {"amount": 1, "ts": "2026-11-01T12:00:00Z", "device_id": "d-1"}
    stream = [Transaction.model_validate({**base, "event_id": f"e{i}", "account_id": a})
              for i, a in enumerate(["a", "b", "c"])]
    pipeline, sink = pipeline_for(GRAPH_RULESET, graph=True)
    for record in raw_records(stream):
        pipeline.process([record])
    assert {h.rule_id for h in sink.hits.values()} >= {"shared-device"}
    pipeline.close()


class _Hit:
    """An answer's hit record with the attributes the oracle comparison reads."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.rule_id = record["rule_id"]
        self.event_id = record["event_id"]
        self.value = record["value"]
