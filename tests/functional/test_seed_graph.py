"""The reference producer's records, end to end through the graph: its eleven accounts sharing
one e-mail and one phone come out as one ring and are flagged by the default shared_identifier
rule; nobody else is, in particular not for paying the same merchants."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SEED_SAMPLE
from tests.functional.test_cli import cli, summary

RING = {f"1234-5678-{i}" for i in range(20, 31)}


@pytest.fixture(scope="module", params=["sqlite", "gremlite"])
def replayed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The sample replayed on each embedded graph backend (GRAPH_BACKEND for the whole module's CLI calls)."""
    data = tmp_path_factory.mktemp(f"seed-{request.param}")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GRAPH_BACKEND", request.param)
        result = summary(cli("replay", "--rules", "rules.yaml", "--events", str(SEED_SAMPLE), "--data-dir",
                             str(data), "--out", str(data / "out.jsonl")))
        assert result["accepted"] == 550
        assert (data / ("entity-graph.sqlite" if request.param == "sqlite" else "graph.sqlite")).exists()
        yield data


def test_the_ring_is_one_ring_linked_by_its_email_and_phone(replayed: Path) -> None:
    rings = json.loads(summary_free(cli("graph", "rings", "--json", "--min-size", "2", "--data-dir", str(replayed))))
    ring = next(r for r in rings if RING & set(r["accounts"]))
    assert set(ring["accounts"]) == RING
    links = {(i["label"], i["key"]): set(i["accounts"]) for i in ring["identifiers"]}
    assert links == {("Email", "shared@example-anycompany.com"): RING, ("Phone", "10001000"): RING}
    assert all(not (RING & set(r["accounts"])) for r in rings if r is not ring)


def test_only_ring_accounts_are_flagged_by_the_shared_identifier_rule(replayed: Path) -> None:
    hits = [json.loads(line) for line in (replayed / "out.jsonl").read_text().splitlines()]
    flagged = {h["account_id"] for h in hits if h["rule_id"] == "shared-identity-ring"}
    assert flagged == RING
    # Many other accounts pay the ring's merchants; paying the same merchant links nobody.
    ring_merchants = {json.loads(json.loads(line)["data"])["merchant"] for line in SEED_SAMPLE.read_text().splitlines()
                      if json.loads(json.loads(line)["data"])["account"] in RING}
    co_payers = {json.loads(json.loads(line)["data"])["account"] for line in SEED_SAMPLE.read_text().splitlines()
                 if json.loads(json.loads(line)["data"])["merchant"] in ring_merchants} - RING
    assert len(co_payers) > 50 and not (co_payers & flagged)
    edge = next(h["edge"] for h in hits if h["rule_id"] == "shared-identity-ring")
    assert edge["label"] == "SHARED_IDENTITY_RING" and edge["to"]["field"] in ("email", "phone")


def test_hits_are_edges_in_the_graph(replayed: Path) -> None:
    hits = [json.loads(line) for line in (replayed / "out.jsonl").read_text().splitlines()]
    view = json.loads(summary_free(cli("graph", "account", "1234-5678-28", "--json", "--data-dir", str(replayed))))
    on_28 = {h["hit_id"] for h in view["hits"] if h["account_id"] == "1234-5678-28"}
    assert on_28 == {h["hit_id"] for h in hits if h["account_id"] == "1234-5678-28"}
    assert {a["account"] for a in view["accounts"]} == RING
    high_value = next(h for h in view["hits"] if h["rule_id"] == "high-value-5m")
    assert (high_value["label"], high_value["to_label"]) == ("HIGH_VALUE_SUM", "Merchant")


def test_replaying_again_adds_no_vertex_or_edge(replayed: Path, tmp_path: Path) -> None:
    def counts() -> tuple[int, int]:
        from chalicelib.wiring import open_embedded_graph

        graph = open_embedded_graph(replayed)
        assert graph is not None
        try:
            c = graph.counts()
        finally:
            graph.close()
        return c["vertices"], c["edges"]

    before = counts()
    again = summary(cli("replay", "--rules", "rules.yaml", "--events", str(SEED_SAMPLE), "--data-dir", str(replayed),
                        "--out", str(tmp_path / "again.jsonl")))
    assert again["duplicates"] == 550 and again["hits"] == {}
    assert counts() == before


def summary_free(result: object) -> str:
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    return result.stdout  # type: ignore[attr-defined]


def test_graph_rings_ranks_the_ring_above_the_larger_chain_of_coincidences(replayed: Path) -> None:
    """Issue 12: by size a chain of 16 ordinary accounts came first; by cohesion the ring does."""
    by_size = json.loads(summary_free(cli("graph", "rings", "--json", "--min-size", "2", "--rank", "size",
                                          "--data-dir", str(replayed))))
    by_cohesion = json.loads(summary_free(cli("graph", "rings", "--json", "--min-size", "2", "--data-dir",
                                              str(replayed))))
    assert len(by_size[0]["accounts"]) == 16 and set(by_size[0]["accounts"]) != RING
    assert set(by_cohesion[0]["accounts"]) == RING
    assert by_cohesion[0]["cohesion"] == pytest.approx(1.25)
    chain = next(r for r in by_cohesion if r["accounts"] == by_size[0]["accounts"])
    assert chain["cohesion"] < 0.8  # below linked-ring's min_cohesion


def test_the_linked_ring_rule_flags_the_ring_and_nobody_else(replayed: Path) -> None:
    hits = [json.loads(line) for line in (replayed / "out.jsonl").read_text().splitlines()]
    assert {h["account_id"] for h in hits if h["rule_id"] == "linked-ring"} == RING
