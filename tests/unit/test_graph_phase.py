"""The pipeline's graph phase: which backend the settings build, and a batch whose graph phase
fails leaves nothing half-written in the graph (and the next delivery writes it whole)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from chalicelib.events import RawRecord
from chalicelib.hits import Hit
from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource, load_rules_text
from chalicelib.settings import Settings
from chalicelib.stores import (
    GremlinGraphStore,
    JsonLinesDeadLetterSink,
    JsonLinesHitSink,
    SQLiteGraphStore,
    SQLiteTimeSeriesStore,
)
from chalicelib.wiring import build_graph_store
from fraudtools.testing.harness import MemoryDeadLetterSink, MemoryHitSink
from tests.fakes import FlakyHitSink

RULES = """
version: 1
rules:
  - {id: busy, kind: velocity, key: account_id, window: 10m, threshold: 1}
  - {id: ring, kind: shared_identifier, via: [email], threshold: 1}
"""


def test_settings_build_the_sqlite_graph_by_default_and_gremlite_on_request(tmp_path: Path) -> None:
    default = build_graph_store(Settings(data_dir=tmp_path))
    gremlite = build_graph_store(Settings(data_dir=tmp_path, graph_backend="gremlite"))
    try:
        assert isinstance(default, SQLiteGraphStore) and default.path == tmp_path / "entity-graph.sqlite"
        assert isinstance(gremlite, GremlinGraphStore) and gremlite.write_form == "coalesce"
    finally:
        for store in (default, gremlite):
            assert store is not None
            store.close()


class FailingOnce(SQLiteGraphStore):
    failures = 1

    def write_hits(self, hits: Sequence[Hit]) -> int:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("hit edge write failed")
        return super().write_hits(hits)


def test_a_failed_graph_phase_is_rolled_back_and_redone_whole(tmp_path: Path) -> None:
    graph = FailingOnce(tmp_path / "g.sqlite")
    pipeline = Pipeline(StaticRulesSource(load_rules_text(RULES)), SQLiteTimeSeriesStore(tmp_path / "ts.sqlite"),
                        JsonLinesHitSink(tmp_path / "hits.jsonl"), JsonLinesDeadLetterSink(tmp_path / "dl.jsonl"),
                        graph=graph)
    records = [RawRecord(f"r{i}", str(i), "pk", json.dumps(
        {"event_id": f"e{i}", "account_id": f"a{i % 2}", "amount": 5, "email": "shared@x",
         "ts": f"2026-11-01T10:00:0{i}Z"}).encode()) for i in range(4)]
    with pytest.raises(RuntimeError, match="hit edge write failed"):
        pipeline.process(records)
    assert graph.counts() == {"vertices": 0, "edges": 0}  # the entity writes went with the failure
    report = pipeline.process(records)  # the redelivery
    assert report.error is None and report.rejudged == 4
    hits = sum(report.hits.values())
    assert hits > 0
    assert graph.counts() == {"vertices": 3, "edges": 2 + hits}
    pipeline.close()


def test_graph_phases_are_named_and_composites_come_after_the_graph_rules() -> None:
    from chalicelib.rules import GraphPhase

    composite = "  - {id: both, kind: composite, rules: {busy: 1, ring: 1}, threshold: 1.5}\n"
    ruleset = load_rules_text(RULES.replace("rules:\n", "rules:\n" + composite, 1))
    assert [r.id for r in ruleset.graph_rules(GraphPhase.GRAPH)] == ["ring"]
    assert [r.id for r in ruleset.graph_rules(GraphPhase.COMPOSITE)] == ["both"]
    assert GraphPhase.GRAPH < GraphPhase.COMPOSITE


NEAR_RULES = """
version: 1
rules:
  - {id: ring, kind: shared_identifier, via: [device_id], threshold: 1}
  - {id: near, kind: near_flagged, via: [email], hops: 1, window: 1h, rules: [ring]}
"""


def near_flagged_stream() -> list[RawRecord]:
    """One batch: a0 and a1 share a device (a `ring` hit on a1), then b shares a1's e-mail.
    `near` is judged in the same phase as `ring`, so on the batch's first delivery b's event sees
    no `ring` hit of this batch."""
    rows = [("a0", "d1", "a0@x"), ("a1", "d1", "shared@x"), ("b", "d2", "shared@x"), ("b", "d2", "shared@x")]
    return [RawRecord(f"r{i}", str(i), "pk", json.dumps(
        {"event_id": f"e{i}", "account_id": account, "amount": 5, "device_id": device, "email": email,
         "ts": f"2026-11-01T10:00:0{i}Z"}).encode()) for i, (account, device, email) in enumerate(rows)]


def graph_pipeline(tmp_path: Path, hits: FlakyHitSink | MemoryHitSink) -> Pipeline:
    return Pipeline(StaticRulesSource(load_rules_text(NEAR_RULES)), SQLiteTimeSeriesStore(tmp_path / "ts.sqlite"),
                    hits, MemoryDeadLetterSink(), graph=SQLiteGraphStore(tmp_path / "g.sqlite"))


def test_a_batch_redelivered_after_its_graph_commit_gives_the_first_deliverys_hits(tmp_path: Path) -> None:
    """The killed-after-the-graph-commit case of the fault tests, made deterministic: the batch's
    own hit edges are in the graph when it is judged again, and must not count as earlier flags."""
    clean_sink = MemoryHitSink()
    clean = graph_pipeline(tmp_path / "clean", clean_sink)
    assert clean.process(near_flagged_stream()).error is None
    assert {h.rule_id for h in clean_sink.hits.values()} == {"ring"}  # `near` sees no same-batch ring hit

    flaky = FlakyHitSink(fail_on={1})  # the graph commits, then the hit sink fails: redelivered
    redelivered = graph_pipeline(tmp_path / "redelivered", flaky)
    assert redelivered.process(near_flagged_stream()).error is not None
    report = redelivered.process(near_flagged_stream())
    assert report.error is None and report.rejudged == 4
    assert {i: h.to_dict() for i, h in flaky.hits.items()} == \
        {i: h.to_dict() for i, h in clean_sink.hits.items()}
    clean.close()
    redelivered.close()
