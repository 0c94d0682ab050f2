"""POST /api/decisions through chalice.test.Client on the embedded stores: the decision policy,
verdicts per rule, one truth with the stream (a later Kinesis delivery is a duplicate), reposts
that store nothing, bad input refused with the dead-letter corpus's reasons, and 503 when a store
cannot answer - nothing stored in each refused case."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.decisions import DecisionService
from chalicelib.pipeline import Pipeline
from chalicelib.rules import FileRulesSource
from chalicelib.stores import JsonLinesDeadLetterSink, JsonLinesHitSink, SQLiteGraphStore, SQLiteTimeSeriesStore
from chalicelib.stores.decisions import SQLiteDecisionLog
from tests.conftest import PROJECT
from tests.functional.test_handler import invoke
from tests.functional.test_hostile_records import LINES, MANIFEST

HEADERS = {"Content-Type": "application/json"}


def post(client: Client, payload: dict[str, Any] | bytes) -> tuple[int, dict[str, Any]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response = client.http.post("/api/decisions", headers=HEADERS, body=body)
    return response.status_code, json.loads(response.body)


def payment(event_id: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "account_id": "acct-1", "amount": 20, "ts": "2026-11-01T10:00:00Z", **fields}


def stored(data_dir: Path) -> dict[str, Any]:
    """Every row the decision path can write, as comparable values (a store opened but empty
    holds nothing)."""
    out: dict[str, Any] = {}
    for name in ("timeseries.sqlite", "entity-graph.sqlite", "decisions.sqlite"):
        path = data_dir / name
        out[name] = {}
        if not path.exists():
            continue
        db = sqlite3.connect(path)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                           "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        for table in tables:
            rows = sorted(map(repr, db.execute(f"SELECT * FROM {table}")))  # table names from the schema
            if rows:
                out[name][table] = rows
        db.close()
    for name in ("hits.jsonl", "dead-letters.jsonl"):
        path = data_dir / name
        out[name] = path.read_text() if path.exists() else ""
    return out


def without_time(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "took_ms"}


def test_a_plain_payment_is_approved_with_a_verdict_per_rule(handler_client: Client, tmp_path: Path) -> None:
    status, answer = post(handler_client, payment("p1"))
    assert status == 200, answer
    assert (answer["event_id"], answer["decision"], answer["hits"]) == ("p1", "approve", [])
    assert answer["took_ms"] > 0 and len(answer["ruleset_version"]) == 12
    verdicts = {r["rule_id"]: r for r in answer["rules"]}
    assert verdicts["velocity-1m"] == {"rule_id": "velocity-1m", "mode": "enforce", "verdict": "no_hit",
                                       "value": None, "threshold": 5}
    # no card: the card rule neither judges nor counts the event
    assert verdicts["card-testing-10m"]["verdict"] == "not_judged"
    assert {r["verdict"] for r in answer["rules"]} <= {"no_hit", "not_judged"}


def test_a_critical_hit_declines_a_high_hit_reviews(handler_client: Client, tmp_path: Path) -> None:
    status, answer = post(handler_client, payment("p1", ip="203.0.113.66"))  # blocked-ip: critical
    assert status == 200 and answer["decision"] == "decline"
    assert [h["rule_id"] for h in answer["hits"]] == ["blocked-ip"]
    blocked = next(r for r in answer["rules"] if r["rule_id"] == "blocked-ip")
    assert blocked["verdict"] == "hit"

    assert post(handler_client, payment("p2", amount=30000, ts="2026-11-01T11:00:00Z"))[1]["decision"] == "approve"
    _, answer = post(handler_client, payment("p3", amount=25000, ts="2026-11-01T11:03:00Z"))
    assert answer["decision"] == "review"  # high-value-5m: high
    hit = answer["hits"][0]
    assert (hit["rule_id"], hit["value"], hit["threshold"], hit["event_id"]) == ("high-value-5m", 55000, 50000, "p3")
    verdict = next(r for r in answer["rules"] if r["rule_id"] == "high-value-5m")
    assert (verdict["verdict"], verdict["value"], verdict["threshold"]) == ("hit", 55000, 50000)


def test_the_answer_carries_the_hit_records_the_stream_writes(handler_client: Client, tmp_path: Path) -> None:
    _, answer = post(handler_client, payment("p1", ip="203.0.113.66"))
    written = [json.loads(line) for line in (tmp_path / "hits.jsonl").read_text().splitlines()]
    assert answer["hits"] == written


def test_a_repost_gives_the_same_answer_and_stores_nothing(handler_client: Client, tmp_path: Path) -> None:
    post(handler_client, payment("p0", amount=30000, ts="2026-11-01T11:00:00Z"))
    _, first = post(handler_client, payment("p1", amount=25000, ts="2026-11-01T11:03:00Z"))
    before = stored(tmp_path)
    # the same id with other content: the first content and the first answer win
    status, again = post(handler_client, payment("p1", amount=1, ip="203.0.113.66", ts="2026-11-01T11:03:00Z"))
    assert status == 200
    assert without_time(again) == without_time(first) and first["decision"] == "review"
    assert stored(tmp_path) == before


def test_a_later_kinesis_delivery_of_a_decided_event_is_a_duplicate(handler_client: Client, tmp_path: Path) -> None:
    _, answer = post(handler_client, payment("p1", ip="203.0.113.66"))
    before = stored(tmp_path)
    report = invoke(handler_client, [json.dumps(payment("p1", ip="203.0.113.66")).encode()])
    assert (report["accepted"], report["duplicates"], report["hits"], report["batchItemFailures"]) == (0, 1, {}, [])
    assert stored(tmp_path) == before
    hit_ids = [json.loads(line)["hit_id"] for line in (tmp_path / "hits.jsonl").read_text().splitlines()]
    assert hit_ids == [h["hit_id"] for h in answer["hits"]] and len(hit_ids) == 1


def test_an_event_the_stream_judged_first_gets_its_decision_from_its_hits(handler_client: Client,
                                                                         tmp_path: Path) -> None:
    invoke(handler_client, [json.dumps(payment("p1", ip="203.0.113.66")).encode()])
    before = stored(tmp_path)
    status, answer = post(handler_client, payment("p1", ip="203.0.113.66"))
    assert status == 200 and answer["decision"] == "decline"
    assert [h["rule_id"] for h in answer["hits"]] == ["blocked-ip"]
    assert stored(tmp_path) == before


def test_stream_and_decisions_interleave_as_one_arrival_order(handler_client: Client, tmp_path: Path) -> None:
    # five 500s on the stream, the sixth decided: repeat-500-15m counts across both paths
    bodies = [json.dumps(payment(f"s{i}", amount=500, ts=f"2026-11-01T10:0{i}:00Z")).encode() for i in range(5)]
    invoke(handler_client, bodies)
    _, answer = post(handler_client, payment("d6", amount=500, ts="2026-11-01T10:05:00Z"))
    assert "repeat-500-15m" in [h["rule_id"] for h in answer["hits"]]


def test_recent_decisions_newest_first(handler_client: Client, tmp_path: Path) -> None:
    post(handler_client, payment("p1"))
    post(handler_client, payment("p2", ip="203.0.113.66"))
    response = handler_client.http.get("/api/decisions?limit=10")
    assert response.status_code == 200
    decisions = json.loads(response.body)["decisions"]
    assert [(d["event_id"], d["decision"]) for d in decisions] == [("p2", "decline"), ("p1", "approve")]
    assert all(d["took_ms"] > 0 for d in decisions)
    assert handler_client.http.get("/api/decisions?limit=0").status_code == 400


@pytest.mark.parametrize("index", [i for i, m in enumerate(MANIFEST) if m["expect"] == "dead-letter"
                                   and "envelope_sequence" not in m])
def test_a_hostile_body_is_refused_with_its_dead_letter_reason_and_nothing_is_stored(
        handler_client: Client, tmp_path: Path, index: int) -> None:
    meta, body = MANIFEST[index], LINES[index]
    before = stored(tmp_path)
    status, answer = post(handler_client, body)
    assert status == (413 if len(body) > 32 * 1024 else 400), answer
    # a record refused by the line reader of files has the handler's reason when it comes whole
    assert meta.get("handler_reason", meta["reason"]) in answer["error"] and answer["field"]
    assert stored(tmp_path) == before


def test_an_invalid_field_is_named(handler_client: Client, tmp_path: Path) -> None:
    status, answer = post(handler_client, payment("p1", amount="lots"))
    assert (status, answer["field"]) == (400, "amount")
    status, answer = post(handler_client, {"account_id": "a", "amount": 1, "ts": "2026-11-01T10:00:00Z"})
    assert (status, answer["field"]) == (400, "event_id")
    assert stored(tmp_path)["timeseries.sqlite"] == {}
    assert post(handler_client, payment("p1"))[0] == 200  # the refused id was not taken


def test_the_decision_policy_of_the_rules_file_is_applied(handler_client: Client, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    text = (PROJECT / "rules.yaml").read_text()
    rules = tmp_path / "rules.yaml"
    default = "decisions:\n  severity: {critical: decline, high: review}\n"
    assert default in text
    rules.write_text(text.replace(default, "decisions:\n  severity: {critical: review}\n"
                                           "  rules: {high-value-5m: decline}\n", 1))
    monkeypatch.setenv("RULES_FILE", str(rules))
    chalice_app.reset_pipeline()
    assert post(handler_client, payment("p1", ip="203.0.113.66"))[1]["decision"] == "review"
    post(handler_client, payment("p2", amount=30000, ts="2026-11-01T11:00:00Z"))
    assert post(handler_client, payment("p3", amount=25000, ts="2026-11-01T11:03:00Z"))[1]["decision"] == "decline"


def test_shadow_hits_never_change_the_decision(handler_client: Client, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nlists:\n  bad: {values: [ip-9]}\nrules:\n"
                     "  - {id: bad-ip, kind: list_match, field: ip, list: bad, severity: critical, mode: shadow}\n")
    monkeypatch.setenv("RULES_FILE", str(rules))
    chalice_app.reset_pipeline()
    _, answer = post(handler_client, payment("p1", ip="ip-9"))
    assert answer["decision"] == "approve" and [h["mode"] for h in answer["hits"]] == ["shadow"]
    assert answer["rules"] == [{"rule_id": "bad-ip", "mode": "shadow", "verdict": "hit", "value": 1,
                                "threshold": 0}]


def test_a_store_that_cannot_answer_gives_503_and_nothing_is_stored(handler_client: Client, tmp_path: Path) -> None:
    data = tmp_path / "locked"
    timeseries = SQLiteTimeSeriesStore(data / "timeseries.sqlite", busy_timeout_s=0.05)
    pipeline = Pipeline(FileRulesSource(PROJECT / "rules.yaml"), timeseries, JsonLinesHitSink(data / "hits.jsonl"),
                        JsonLinesDeadLetterSink(data / "dead-letters.jsonl"),
                        graph=SQLiteGraphStore(data / "entity-graph.sqlite"))
    chalice_app.use_decisions(DecisionService(pipeline, SQLiteDecisionLog(data / "decisions.sqlite")))
    try:
        before = stored(data)
        holder = sqlite3.connect(data / "timeseries.sqlite", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another writer holds the store
        try:
            status, answer = post(handler_client, payment("p1", ip="203.0.113.66"))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert status == 503 and "busy" in answer["error"], answer
        assert stored(data) == before
        # the store answers again: the same request is decided
        status, answer = post(handler_client, payment("p1", ip="203.0.113.66"))
        assert (status, answer["decision"]) == (200, "decline")
    finally:
        chalice_app.use_decisions(None)
        pipeline.close()


def test_the_decision_function_answers_the_routes_api_gateway_event(handler_client: Client, tmp_path: Path) -> None:
    """In AWS, POST /api/decisions is integrated with its own function (`decide`): it gets the API
    Gateway proxy event and answers exactly as the route does."""
    body = json.dumps(payment("p1", ip="203.0.113.66"))
    event = {"resource": "/api/decisions", "path": "/api/decisions", "httpMethod": "POST",
             "headers": {"Content-Type": "application/json"},
             "multiValueHeaders": {"Content-Type": ["application/json"]},
             "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
             "stageVariables": None, "body": body, "isBase64Encoded": False,
             "requestContext": {"resourcePath": "/api/decisions", "httpMethod": "POST", "path": "/api/decisions",
                                "stage": "api", "requestId": "r-1", "identity": {"sourceIp": "127.0.0.1"}}}
    response = handler_client.lambda_.invoke("decide", event).payload
    assert response["statusCode"] == 200, response
    answer = json.loads(response["body"])
    assert (answer["event_id"], answer["decision"]) == ("p1", "decline")
    assert [json.loads(line)["hit_id"] for line in (tmp_path / "hits.jsonl").read_text().splitlines()] == \
        [h["hit_id"] for h in answer["hits"]]


def test_answers_match_the_documented_shapes(handler_client: Client, tmp_path: Path) -> None:
    from tests.functional.test_api_openapi import DOCUMENT, json_schema

    item = DOCUMENT["paths"]["/api/decisions"]

    def check(method: str, response: Any) -> int:
        schema = item[method]["responses"][str(response.status_code)]["content"]["application/json"]["schema"]
        jsonschema.validate(json.loads(response.body), json_schema(schema))
        return int(response.status_code)

    statuses = [check("post", handler_client.http.post("/api/decisions", headers=HEADERS, body=body)) for body in (
        json.dumps(payment("p1", ip="203.0.113.66")).encode(), json.dumps(payment("p2")).encode(),
        b"{oops", b"x" * 40_000)]
    assert statuses == [200, 200, 400, 413]
    assert [check("get", handler_client.http.get(f"/api/decisions{q}")) for q in ("", "?limit=x")] == [200, 400]


def test_a_graph_that_cannot_answer_gives_503_and_the_retry_judges_once(handler_client: Client,
                                                                       tmp_path: Path) -> None:
    """The graph fails after the time-series write: 503, no hit, no graph write, no kept answer;
    the event is stored but not judged (as after a failed batch), so the retry judges it - once,
    with the hit it would have had."""
    data = tmp_path / "graph-locked"
    graph = SQLiteGraphStore(data / "entity-graph.sqlite", busy_timeout_s=0.05)
    pipeline = Pipeline(FileRulesSource(PROJECT / "rules.yaml"), SQLiteTimeSeriesStore(data / "timeseries.sqlite"),
                        JsonLinesHitSink(data / "hits.jsonl"), JsonLinesDeadLetterSink(data / "dead-letters.jsonl"),
                        graph=graph)
    chalice_app.use_decisions(DecisionService(pipeline, SQLiteDecisionLog(data / "decisions.sqlite")))
    try:
        before = stored(data)
        holder = sqlite3.connect(data / "entity-graph.sqlite", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            status, answer = post(handler_client, payment("p1", ip="203.0.113.66"))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert status == 503 and "busy" in answer["error"], answer
        after = stored(data)
        assert {k: v for k, v in after.items() if k != "timeseries.sqlite"} == \
            {k: v for k, v in before.items() if k != "timeseries.sqlite"}
        (row,) = after["timeseries.sqlite"]["events"]
        assert "'p1'" in row and row.endswith(", 0)")  # stored, not judged
        status, answer = post(handler_client, payment("p1", ip="203.0.113.66"))
        assert (status, answer["decision"], [h["rule_id"] for h in answer["hits"]]) == (200, "decline", ["blocked-ip"])
        assert len((data / "hits.jsonl").read_text().splitlines()) == 1
    finally:
        chalice_app.use_decisions(None)
        pipeline.close()


def test_recent_decisions_are_read_without_building_a_pipeline(handler_client: Client, tmp_path: Path) -> None:
    """The API function (read-only role in AWS) lists kept answers without opening the stores the
    decision path writes."""
    log = SQLiteDecisionLog(tmp_path / "decisions.sqlite")
    log.record("earlier", {"event_id": "earlier", "decision": "review"})
    log.close()
    response = handler_client.http.get("/api/decisions")
    assert response.status_code == 200
    assert json.loads(response.body)["decisions"] == [{"event_id": "earlier", "decision": "review"}]
    assert chalice_app._pipeline is None and not (tmp_path / "timeseries.sqlite").exists()
