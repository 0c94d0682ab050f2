"""Redelivery with graph rules: a stream cut into batches gives exactly the same hits (macro hits
and their evidence included) whether every batch lands first time or some batches fail after
their graph commit (the hit sink fails) and are delivered again. A redelivered batch must judge
as on its first delivery: its own hit edges, already in the graph, are not earlier flags."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.events import Transaction
from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource, load_rules_text
from chalicelib.stores import SQLiteGraphStore, SQLiteTimeSeriesStore
from fraudtools.testing.harness import MemoryDeadLetterSink, MemoryHitSink
from tests.fakes import FlakyHitSink, raw_records
from tests.strategies import BASE, cuts, split, streams

# `near` counts hits of rules judged in its own phase (`ring`, `linked`) and of a micro rule
RULESET = load_rules_text("""
version: 1
rules:
  - {id: busy, kind: velocity, key: account_id, window: 2m, threshold: 2}
  - {id: ring, kind: shared_identifier, via: [device_id, card_id], threshold: 1}
  - {id: linked, kind: linked_component, via: [device_id, card_id, ip], max_hops: 2, min_accounts: 2,
     min_cohesion: 0.1, min_account_links: 0.5}
  - {id: near, kind: near_flagged, via: [ip], hops: 1, window: 1h, rules: [busy, ring, linked]}
  - {id: both, kind: composite, rules: {busy: 1, near: 1}, threshold: 1.5, scope: account, window: 1h}
""", name="graph-redelivery-rules.yaml")


def run(stream: list[Transaction], points: list[int], sink: MemoryHitSink) -> dict[str, dict[str, Any]]:
    pipeline = Pipeline(StaticRulesSource(RULESET), SQLiteTimeSeriesStore(":memory:"), sink,
                        MemoryDeadLetterSink(), graph=SQLiteGraphStore(":memory:"))
    for records in split(raw_records(stream), points):
        for _ in range(10):
            report = pipeline.process(records)
            if report.failed_from is None:
                break
            records = [r for r in records if int(r.sequence_number) >= int(report.failed_from)]
        else:
            raise AssertionError("a batch never landed")
    pipeline.close()
    return {hit_id: hit.to_dict() for hit_id, hit in sink.hits.items()}


@given(st.data())
def test_batches_redelivered_after_their_graph_commit_give_the_clean_runs_hits(data: st.DataObject) -> None:
    stream = data.draw(streams(max_size=30))
    points = data.draw(cuts(len(stream)))
    fail_on = data.draw(st.sets(st.integers(1, len(points) + 1), min_size=1, max_size=3))
    clean = run(stream, points, MemoryHitSink())
    assert run(stream, points, FlakyHitSink(fail_on)) == clean


def test_the_rules_produce_every_kind_of_hit_on_some_stream() -> None:
    """Guard against a vacuous property: each rule fires on a small hand-made stream."""
    rows = [("a", "d-1", "k-1", "ip-1"), ("b", "d-1", "k-1", "ip-2"), ("c", "d-2", "k-2", "ip-2"),
            ("c", "d-2", "k-2", "ip-2"), ("c", "d-2", "k-2", "ip-2")]
    stream = [Transaction(event_id=f"e{i}", ts=BASE + timedelta(seconds=i), account_id=account, amount=Decimal("5"),
                          device_id=device, card_id=card, ip=ip) for i, (account, device, card, ip) in enumerate(rows)]
    hits = run(stream, [1, 2, 3, 4], MemoryHitSink())
    assert {h["rule_id"] for h in hits.values()} == {"busy", "ring", "linked", "near", "both"}
