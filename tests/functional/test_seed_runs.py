"""Three runs of the AWS reference producer into one data directory (issue 21): its ordinary
accounts draw a new e-mail and phone per run, so after three runs most e-mails are shared by
chance. With the default rules.yaml the graph rules in enforce mode flag the ring's 11 accounts
and at most 2 others (one run: the ring and nobody else), and the ring ranks first in
`graph rings` and in the API's `/api/rings`, both by cohesion."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.settings import Settings
from chalicelib.wiring import build_investigator
from fraudtools.cli import main as cli_main
from tests.conftest import PROJECT, SEED_SAMPLE
from tests.seed_runs import RING, producer_runs

THREE_RUNS = PROJECT / "tests" / "fixtures" / "seed-producer-three-runs.jsonl"


def test_the_three_runs_fixture_is_the_sample_run_three_times_with_fresh_draws() -> None:
    assert THREE_RUNS.read_text().splitlines() == producer_runs(SEED_SAMPLE, 3)
    records = [json.loads(json.loads(line)["data"]) for line in producer_runs(SEED_SAMPLE, 3)]
    assert len(records) == 1650 and len({r["account"] for r in records}) == 99
    emails: dict[str, set[str]] = {}
    for r in records:
        emails.setdefault(r["accountemail"], set()).add(r["account"])
    shared = [e for e, accounts in emails.items() if len(accounts) > 1 and e != "shared@example-anycompany.com"]
    assert len(shared) > 60  # chance collisions: the noise of the issue
    per_account = [len({r["accountemail"] for r in records if r["account"] == a})
                   for a in {r["account"] for r in records} - RING]
    assert sum(per_account) / len(per_account) > 2.5


@pytest.fixture(scope="module", params=[1, 3], ids=["one-run", "three-runs"])
def replayed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    data = tmp_path_factory.mktemp(f"runs-{request.param}")
    events = data / "events.jsonl"
    events.write_text("\n".join(producer_runs(SEED_SAMPLE, request.param)) + "\n")
    assert cli_main(["replay", "--rules", str(PROJECT / "rules.yaml"), "--events", str(events), "--data-dir",
                     str(data), "--out", str(data / "out.jsonl")]) == 0
    yield request.param, data


def test_graph_rules_in_enforce_mode_flag_the_ring_and_at_most_two_others(replayed: tuple[int, Path]) -> None:
    runs, data = replayed
    hits = [json.loads(line) for line in (data / "out.jsonl").read_text().splitlines()]
    graph_kinds = {"shared_identifier", "linked_component", "near_flagged"}
    flagged = {h["account_id"] for h in hits if h["kind"] in graph_kinds and h["mode"] == "enforce"}
    assert flagged & RING == RING
    others = flagged - RING
    assert len(others) <= (0 if runs == 1 else 2), sorted(others)
    for rule in ("shared-identity-ring", "linked-ring"):  # each graph rule on its own finds the ring
        assert {h["account_id"] for h in hits if h["rule_id"] == rule} >= RING


def test_the_ring_ranks_first_in_graph_rings_and_the_api(replayed: tuple[int, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _, data = replayed
    assert cli_main(["graph", "rings", "--json", "--min-size", "2", "--data-dir", str(data)]) == 0
    rings = json.loads(capsys.readouterr().out)
    assert set(rings[0]["accounts"]) == RING
    investigator = build_investigator(Settings(data_dir=data))
    app_module.use_investigator(investigator)
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")
    try:
        with Client(app_module.app) as client:
            answer = client.http.get("/api/rings?min_size=2")
    finally:
        app_module.use_investigator(None)
        investigator.close()
    assert answer.status_code == 200
    items = json.loads(answer.body)["items"]
    assert set(items[0]["accounts"]) == RING
    assert [r["accounts"] for r in items] == [r["accounts"] for r in rings[:len(items)]]  # they agree
