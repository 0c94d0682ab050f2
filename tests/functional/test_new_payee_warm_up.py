"""`new_key_fan_out` warms up (DESIGN.md, Rule semantics): a key can only be judged new once the
time-series store's observation covers the whole window before the event. On the reference
producer's records - minutes of traffic, 99 accounts paying 20 merchants, every payee "new" to a
store that started with them - the default `new-payee-fanout-3h` must stay silent (it fired 402
times, on every account, before the warm-up)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from chalicelib.rules import load_rules_file
from fraudtools.cli import embedded_pipeline, stream_through
from fraudtools.record_files import records_from_lines
from tests.conftest import PROJECT, SEED_SAMPLE


def test_the_reference_producer_records_raise_no_new_payee_hit(tmp_path: Path) -> None:
    ruleset = load_rules_file(PROJECT / "rules.yaml")
    assert ruleset.rule("new-payee-fanout-3h").needs_full_history
    pipeline = embedded_pipeline(ruleset, tmp_path, tmp_path / "hits.jsonl")
    try:
        with SEED_SAMPLE.open("rb") as handle:
            records = list(records_from_lines(handle, "auto"))
        stream_through(pipeline, records, 100)
        stored = pipeline.timeseries.dump()  # type: ignore[attr-defined]  (the embedded SQLite store)
        observed = pipeline.timeseries.observed_since()
    finally:
        pipeline.close()
    assert len(stored) == len(records) == 550
    assert observed == stored[0][3]  # the ts_ms of the first event by arrival (lowest seq)
    assert max(row[3] for row in stored) - observed < 30 * 86_400_000  # a stream far younger than 30 days
    rules = Counter(json.loads(line)["rule_id"] for line in (tmp_path / "hits.jsonl").read_text().splitlines())
    assert rules["new-payee-fanout-3h"] == 0
    assert rules["high-value-5m"] > 0  # the other rules still judge
