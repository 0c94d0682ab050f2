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
