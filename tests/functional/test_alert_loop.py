"""The alert loop end to end (issue 23's "done when"): replay the reference sample into a data
directory and `serve` it; each ring account (1234-5678-20..30) has one alert; deciding them through the API
(fraud for the ring, legit for one other account) and exporting labels gives a labels.json with
which `backtest --labels` reports precision. Plus the API's refusals and the idempotency of
alerts under redelivery."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import warnings
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.alerts import AlertFilter
from chalicelib.inbox import AlertInbox
from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource, load_rules_file
from chalicelib.settings import Settings
from chalicelib.stores import JsonLinesDeadLetterSink, JsonLinesHitSink, SQLiteGraphStore, SQLiteTimeSeriesStore
from chalicelib.stores.alerts_sqlite import SQLiteAlertStore
from chalicelib.wiring import build_investigator
from fraudtools.cli import main as cli_main
from fraudtools.cli.runner import stream_through
from fraudtools.record_files import records_from_lines
from tests.conftest import PROJECT, SEED_SAMPLE
from tests.serving import serving

RING = [f"1234-5678-{n}" for n in range(20, 31)]
OTHER = "1234-5678-0"


def replay(data_dir: Path) -> None:
    assert cli_main(["replay", "--rules", str(PROJECT / "rules.yaml"), "--events", str(SEED_SAMPLE),
                     "--data-dir", str(data_dir), "--out", str(data_dir / "out.jsonl")]) == 0


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    replay(tmp_path)
    investigator = build_investigator(Settings(data_dir=tmp_path))
    app_module.use_investigator(investigator)
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")
    try:
        with Client(app_module.app) as test_client:
            yield test_client
    finally:
        app_module.use_investigator(None)
        app_module.use_local_user(None)
        investigator.close()


def call(target: Client | str, method: str, url: str, body: Any = None, status: int = 200) -> Any:
    """One API call through the Chalice test client, or over HTTP to a `serve` at base URL `target`."""
    data = None if body is None else body if isinstance(body, str | bytes) else json.dumps(body)
    if isinstance(target, str):
        request = urllib.request.Request(target + url, method=method, headers={"Content-Type": "application/json"},
                                         data=data.encode() if isinstance(data, str) else data)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                code, answer = response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            code, answer = exc.code, json.load(exc)
    else:
        response = (target.http.get(url) if method == "GET" else
                    target.http.post(url, headers={"Content-Type": "application/json"}, body=data))
        code, answer = response.status_code, json.loads(response.body)
    assert code == status, (url, answer)
    return answer


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`serve --user ana` (the real local server) over a replay of the sample in tmp_path."""
    replay(tmp_path)
    with serving(tmp_path, "--user", "ana") as url:
        yield url


def enforce_hits(data_dir: Path) -> list[dict[str, Any]]:
    hits = [json.loads(line) for line in (data_dir / "hits.jsonl").read_text().splitlines()]
    return [h for h in hits if h["mode"] == "enforce"]


def test_decide_the_ring_through_the_api_export_labels_and_backtest(served: str, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    hits = enforce_hits(tmp_path)
    rules_of: dict[str, set[str]] = defaultdict(set)
    for h in hits:
        rules_of[h["account_id"]].add(h["rule_id"])
    alerts = {}
    for account in [*RING, OTHER]:
        found = call(served, "GET", f"/api/alerts?account={account}")["items"]
        assert len(found) == 1, account
        alerts[account] = found[0]
        assert found[0]["hit_count"] == sum(1 for h in hits if h["account_id"] == account)
        assert set(found[0]["rules"]) == rules_of[account]
    for account in RING:
        alert_id = alerts[account]["alert_id"]
        assigned = call(served, "POST", f"/api/alerts/{alert_id}/assign", {"assignee": "ana"})
        assert (assigned["status"], assigned["assignee"]) == ("assigned", "ana")
        closed = call(served, "POST", f"/api/alerts/{alert_id}/verdict", {"verdict": "fraud", "note": "ring"})
        assert (closed["status"], closed["verdict"]) == ("closed", "fraud")
    call(served, "POST", f"/api/alerts/{alerts[OTHER]['alert_id']}/verdict", {"verdict": "legit"})
    detail = call(served, "GET", f"/api/alerts/{alerts[RING[0]]['alert_id']}")
    assert [(e["action"], e["actor"]) for e in detail["audit"]][-2:] == [("assigned", "ana"), ("verdict", "ana")]
    assert {h["hit_id"] for h in detail["hits"]} == {h["hit_id"] for h in hits if h["account_id"] == RING[0]}
    assert call(served, "GET", "/api/alerts?status=open&limit=500")["items"] != []
    assert all(a["account_id"] not in RING for a in call(served, "GET", "/api/alerts?status=open&limit=500")["items"])

    # per-rule precision on decided alerts, against the rules each account's hits name
    precision = {p["rule_id"]: p for p in call(served, "GET", "/api/alert-precision")["items"]}
    for rule in set().union(*(rules_of[a] for a in [*RING, OTHER])):
        fraud = sum(rule in rules_of[a] for a in RING)
        legit = int(rule in rules_of[OTHER])
        assert (precision[rule]["fraud"], precision[rule]["legit"]) == (fraud, legit), rule
        assert precision[rule]["precision"] == pytest.approx(fraud / (fraud + legit))

    labels_path = tmp_path / "labels.json"
    assert cli_main(["labels", "export", "--data-dir", str(tmp_path), "--out", str(labels_path)]) == 0
    labels = json.loads(labels_path.read_text())
    sample = [json.loads(json.loads(line)["data"]) for line in SEED_SAMPLE.read_text().splitlines()]
    assert labels["accounts"] == dict.fromkeys(RING, "fraud")
    assert len(labels["events"]) == sum(1 for e in sample if e["account"] in RING)
    assert labels["known_legit"]["accounts"] == [OTHER]
    assert len(labels["known_legit"]["events"]) == sum(1 for e in sample if e["account"] == OTHER)

    capsys.readouterr()
    assert cli_main(["backtest", "--rules", str(PROJECT / "rules.yaml"), "--events", str(SEED_SAMPLE),
                     "--labels", str(labels_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_rule = {d["rule_id"]: d for d in report["diff"]}
    fraud_events = set(labels["events"])
    for rule, d in by_rule.items():
        fired = {h["event_id"] for h in hits if h["rule_id"] == rule}
        if fired:
            expected = len(fired & fraud_events) / len(fired)
            assert d["scores"]["after"]["precision"] == pytest.approx(expected), rule
    assert by_rule["high-value-5m"]["scores"]["after"]["precision"] is not None


def test_bad_transitions_and_parameters_are_refused_with_a_reason(client: Client) -> None:
    alert_id = call(client, "GET", f"/api/alerts?account={RING[0]}")["items"][0]["alert_id"]
    assert "serve --user" in call(client, "POST", f"/api/alerts/{alert_id}/assign", {"assignee": "ana"}, 403)["error"]
    app_module.use_local_user("bob")
    assert "assignee" in call(client, "POST", f"/api/alerts/{alert_id}/assign", {"assignee": "a b"}, 400)["error"]
    assert "verdict" in call(client, "POST", f"/api/alerts/{alert_id}/verdict", {"verdict": "maybe"}, 400)["error"]
    assert "JSON" in call(client, "POST", f"/api/alerts/{alert_id}/verdict", "{nope", 400)["error"]
    extra = call(client, "POST", f"/api/alerts/{alert_id}/verdict", {"verdict": "fraud", "x": 1}, 400)
    assert "x: is not a parameter" in extra["error"]
    call(client, "POST", f"/api/alerts/{'0' * 32}/verdict", {"verdict": "fraud"}, 404)
    call(client, "GET", "/api/alerts/not-an-id", status=400)
    call(client, "POST", f"/api/alerts/{alert_id}/verdict", {"verdict": "legit"})
    refused = call(client, "POST", f"/api/alerts/{alert_id}/verdict", {"verdict": "fraud"}, 409)
    assert "already closed" in refused["error"]
    assert "closed" in call(client, "POST", f"/api/alerts/{alert_id}/assign", {"assignee": "bob"}, 409)["error"]
    assert call(client, "GET", f"/api/alerts/{alert_id}")["alert"]["verdict"] == "legit"
    for query in ("status=gone", "limit=0", "limit=501", "cursor=zzz", "rule=Bad Rule", "x=1"):
        assert call(client, "GET", f"/api/alerts?{query}", status=400)["error"]


def test_the_inbox_pages_most_severe_then_newest(client: Client, tmp_path: Path) -> None:
    everything = call(client, "GET", "/api/alerts?limit=500")["items"]
    paged, cursor = [], None
    while True:
        page = call(client, "GET", "/api/alerts?limit=7" + (f"&cursor={cursor}" if cursor else ""))
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == everything and len(everything) > 7
    ranks = ["low", "medium", "high", "critical"]
    keys = [(ranks.index(a["severity"]), a["last_hit_ts"]) for a in everything]
    assert keys == sorted(keys, reverse=True)
    assert {a["account_id"] for a in call(client, "GET", "/api/alerts?rule=high-value-5m&limit=500")["items"]} \
        == {h["account_id"] for h in enforce_hits(tmp_path) if h["rule_id"] == "high-value-5m"}


class MarkFailsOnce(SQLiteTimeSeriesStore):
    """A real SQLite store whose first `mark_judged` raises as a busy store would: the batch's hits
    and alerts are written, then it is redelivered and judged again."""

    failed = False

    def mark_judged(self, event_ids: Any) -> None:
        if not self.failed:
            self.failed = True
            from chalicelib.stores import TransientStoreError

            raise TransientStoreError("injected: busy while marking judged")
        super().mark_judged(event_ids)


def test_a_redelivered_batch_counts_no_hit_twice_in_alerts(tmp_path: Path) -> None:
    ruleset = load_rules_file(PROJECT / "rules.yaml")
    with SEED_SAMPLE.open("rb") as handle:
        records = list(records_from_lines(handle, "auto"))
    timeseries = MarkFailsOnce(tmp_path / "ts.sqlite")
    inbox = AlertInbox(SQLiteAlertStore(tmp_path / "alerts.sqlite"))
    pipeline = Pipeline(StaticRulesSource(ruleset), timeseries, JsonLinesHitSink(tmp_path / "hits.jsonl"),
                        JsonLinesDeadLetterSink(tmp_path / "dl.jsonl"), graph=SQLiteGraphStore(tmp_path / "g.sqlite"),
                        alerts=inbox)
    try:
        stream_through(pipeline, records, 100)
        assert timeseries.failed
        alerts = inbox.store.list_alerts(AlertFilter(), 500)
        hits = enforce_hits(tmp_path)
        assert sum(a.hit_count for a in alerts) == len(hits)
        per_account: dict[str, int] = defaultdict(int)
        for h in hits:
            per_account[h["account_id"]] += 1
        assert {a.account_id: a.hit_count for a in alerts} == per_account
        assert len(alerts) == len(per_account)  # one alert per account
    finally:
        pipeline.close()


def test_the_commands_refuse_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["labels", "export", "--data-dir", str(tmp_path), "--out", str(tmp_path / "l.json")]) == 1
    error = capsys.readouterr().err
    assert "alerts.sqlite does not exist" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "l.json").exists()
    SQLiteAlertStore(tmp_path / "alerts.sqlite").close()
    assert cli_main(["labels", "export", "--data-dir", str(tmp_path), "--out", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "name a file" in error and len(error.strip().splitlines()) == 1
    assert cli_main(["serve", "--data-dir", str(tmp_path), "--port", "0", "--user", "two words"]) == 1
    error = capsys.readouterr().err
    assert "--user" in error and len(error.strip().splitlines()) == 1


def test_alert_answers_match_the_documented_shapes(client: Client) -> None:
    import jsonschema

    from chalicelib.api.openapi import ALERT_ROUTES, openapi_document
    from tests.functional.test_api_openapi import json_schema

    document = openapi_document()
    alert_id = call(client, "GET", f"/api/alerts?account={RING[1]}")["items"][0]["alert_id"]
    app_module.use_local_user("ana")
    examples: dict[tuple[str, str], list[tuple[str, dict[str, str] | None]]] = {
        ("get", "/api/alerts"): [("?limit=2", None), ("?status=x", None)],
        ("get", "/api/alerts/{alert_id}"): [("", None), ("?x=1", None)],
        ("post", "/api/alerts/{alert_id}/assign"): [("", {"assignee": "ana"}), ("", {"assignee": ""})],
        ("post", "/api/alerts/{alert_id}/verdict"): [("", {"verdict": "fraud", "note": "n"}),
                                                     ("", {"verdict": "legit"})],
        ("get", "/api/alert-precision"): [("", None), ("?limit=1", None)],
    }
    assert set(examples) == set(ALERT_ROUTES)
    for (method, path), cases in examples.items():
        operation = document["paths"][path][method]
        statuses = set()
        for query, body in cases:
            url = path.replace("{alert_id}", alert_id) + query
            if method == "get":
                response = client.http.get(url)
            else:
                response = client.http.post(url, headers={"Content-Type": "application/json"}, body=json.dumps(body))
            status = str(response.status_code)
            assert status in operation["responses"], (path, query, status, response.body)
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            jsonschema.validate(json.loads(response.body), json_schema(schema))
            if body is not None and status == "200":
                request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
                jsonschema.validate(body, json_schema(request_schema))
            statuses.add(status)
        assert "200" in statuses and len(statuses) == 2, (path, statuses)  # one happy answer, one refusal
