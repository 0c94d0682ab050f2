"""Each simulated fraud scenario is detectable in principle: in a small run through the real
pipeline (time series + graph) with the default rules, the rule meant for it fires on it."""

from __future__ import annotations

import json

import pytest

from chalicelib.rules import load_rules_file
from fraudtools.cli import embedded_pipeline, stream_through
from fraudtools.record_files import records_from_lines
from fraudtools.simulate import SCENARIOS, iter_lines, simulate
from tests.conftest import PROJECT

INTENDED = {
    "shared_ring": ["shared-identity-ring", "high-value-5m", "ring-with-money-1h"],
    "ip_fanout": ["ip-fanout-10m"],
    "card_testing": ["card-testing-10m"],
    "account_takeover": ["takeover-1h"],
    "structuring": ["structuring-24h"],
    "mule_ring": ["shared-identity-ring"],
    "impossible_travel": ["impossible-travel-12h"],
    "hubless_ring": ["linked-ring"],
    "identity_cluster": ["linked-ring"],
    "card_testing_spread": ["card-testing-spread-10m"],
    "value_burst": ["value-burst-1h"],
    "scam_payee": ["new-payee-fanout-3h"],
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], list[dict]]:
    data = tmp_path_factory.mktemp("scenarios")
    # a month of the customers' traffic first: new-payee-fanout-3h judges only once 30 days are observed
    stream = simulate(seed=5, accounts=80, days=1.5, lead_in_days=30)
    pipeline = embedded_pipeline(load_rules_file(PROJECT / "rules.yaml"), data, data / "hits.jsonl")
    try:
        stream_through(pipeline, list(records_from_lines(iter_lines(stream), "native")), 100)
    finally:
        pipeline.close()
    return stream.labels, [json.loads(line) for line in (data / "hits.jsonl").read_text().splitlines()]


def test_every_scenario_has_an_intended_rule() -> None:
    assert set(INTENDED) == set(SCENARIOS)


@pytest.mark.parametrize(("scenario", "rule"), [(s, r) for s, rules in INTENDED.items() for r in rules])
def test_intended_rule_fires_on_its_scenario(run: tuple[dict[str, str], list[dict]], scenario: str, rule: str) -> None:
    labels, hits = run
    on_scenario = [h for h in hits if h["rule_id"] == rule and labels.get(h["event_id"]) == scenario]
    assert on_scenario, f"{rule} never fired on a {scenario} event"
