"""Every field a rule may name works as a key and as a hit edge's end (issue 18, item 1).

A rule keyed by `currency` or `attributes.NAME` passed `rules check` and then raised KeyError in
the graph hit write, on every redelivery: a stalled shard. An edge end that is no graph vertex
falls back to the account; an `edge:` that names one explicitly is refused by the loader.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.entities import VERTEX_LABELS
from chalicelib.events import KEY_FIELDS, Transaction, is_key_field
from chalicelib.rules import RulesFileError, load_rules_text
from chalicelib.rules.base import EVENT_FIELDS
from chalicelib.stores.graph_base import HitFilter
from chalicelib.stores.influx import key_expression as influx_key_expression
from chalicelib.stores.sqlite import key_expression as sqlite_key_expression
from chalicelib.stores.sqlite_graph import SQLiteGraphStore
from chalicelib.stores.timestream import key_expression as timestream_key_expression
from tests.conftest import PROJECT

#: Every field of the event model a rule may name, and an attribute.
FIELDS = [*sorted(EVENT_FIELDS), "attributes.tier"]


def test_the_fields_are_every_field_of_the_event_model() -> None:
    assert set(FIELDS) == (set(Transaction.model_fields) - {"attributes"}) | {"attributes.tier"}
    assert {"currency", "amount", "ts", "lat", "event_id"} <= set(FIELDS)


def four_events() -> list[dict[str, Any]]:
    """Four accounts' events sharing every field's value but `event_id` (and `account_id`)."""
    return [{"event_id": f"e{i}", "account_id": f"a{i}", "amount": 5, "currency": "EUR", "merchant_id": "m1",
             "ip": "198.51.100.7", "device_id": "d1", "email": "x@example.com", "phone": "555",
             "card_id": "c1", "lat": 48.1, "lon": 11.5, "ts": "2026-11-01T12:00:00Z",
             "attributes": {"tier": "gold"}} for i in range(1, 5)]


def rules_for(field: str) -> str:
    """`where` on the field, the field as a window's key (where it may be one) and as a
    list_match field, whose hit edge points at the field (or at the account)."""
    listed = str(Transaction.model_validate(four_events()[0]).get(field))
    keyed = f"""\
  - id: by-field
    kind: velocity
    key: {field}
    window: 10m
    threshold: 2
""" if is_key_field(field) else ""
    return f"""\
version: 1
lists:
  the-value: {{values: [{json.dumps(listed)}]}}
rules:
{keyed}  - id: where-field
    kind: velocity
    key: merchant_id
    window: 10m
    threshold: 2
    where: [{{field: {field}, op: exists, value: true}}]
  - id: listed
    kind: list_match
    field: {field}
    list: the-value
"""


def expected_hits(field: str) -> dict[str, int]:
    # where-field: one merchant, four events: the third and fourth are over 2.
    if field in ("event_id", "account_id"):  # four keys of one event each; the list holds the first
        return {"where-field": 2, "listed": 1}
    if not is_key_field(field):
        return {"where-field": 2, "listed": 4}
    return {"by-field": 2, "where-field": 2, "listed": 4}


def check_graph(graph_path: Path, field: str) -> None:
    graph = SQLiteGraphStore(graph_path)
    try:
        edges = graph.find_hits(HitFilter(), 100)
    finally:
        graph.close()
    wanted = expected_hits(field)
    assert len(edges) == sum(wanted.values())
    ends = {"by-field": VERTEX_LABELS.get(field, "Account"), "where-field": "Merchant",
            "listed": VERTEX_LABELS.get(field, "Account")}
    for edge in edges:
        assert (edge["from_label"], edge["from"]) == ("Account", edge["account_id"])
        assert edge["to_label"] == ends[edge["rule_id"]], edge
        if edge["to_label"] == "Account":  # no vertex for the field: the edge ends at the account
            assert edge["to"] == edge["account_id"]


@pytest.mark.parametrize("field", FIELDS)
def test_replay_runs_a_rule_keyed_by_any_field(field: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_for(field))
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in four_events()))
    out, data_dir = tmp_path / "hits.jsonl", tmp_path / "data"
    done = subprocess.run([sys.executable, "-m", "chalicelib", "replay", "--rules", str(rules), "--events",
                           str(events), "--out", str(out), "--data-dir", str(data_dir)],
                          cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["accepted"] == 4
    assert summary["hits"] == expected_hits(field)
    hits = [json.loads(line) for line in out.read_text().splitlines()]
    assert {h["key"] for h in hits if h["rule_id"] != "where-field"} == {field}
    check_graph(data_dir / "entity-graph.sqlite", field)


@pytest.fixture
def client_on_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Client, Path]]:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RULES_FILE", str(tmp_path / "rules.yaml"))
    chalice_app.reset_pipeline()
    with Client(chalice_app.app, project_dir=str(PROJECT), stage_name="local") as test_client:
        yield test_client, tmp_path
    chalice_app.reset_pipeline()


@pytest.mark.parametrize("field", FIELDS)
def test_the_kinesis_handler_runs_a_rule_keyed_by_any_field(field: str,
                                                            client_on_rules: tuple[Client, Path]) -> None:
    client, tmp_path = client_on_rules
    (tmp_path / "rules.yaml").write_text(rules_for(field))
    event = client.events.generate_kinesis_event(message_bodies=[json.dumps(e).encode() for e in four_events()])
    for offset, record in enumerate(event["Records"]):
        record["kinesis"]["sequenceNumber"] = str(offset + 1)
        record["eventID"] = f"shardId-000000000000:{offset + 1}"
    first = client.lambda_.invoke("on_transactions", event).payload
    assert first["batchItemFailures"] == []
    assert first["hits"] == expected_hits(field)
    again = client.lambda_.invoke("on_transactions", event).payload  # a redelivery changes nothing
    assert again["batchItemFailures"] == [] and again["duplicates"] == 4 and not again["hits"]
    check_graph(tmp_path / "data" / "entity-graph.sqlite", field)


@pytest.mark.parametrize("field", FIELDS)
def test_an_explicit_edge_end_is_an_entity_or_a_located_error(field: str) -> None:
    text = f"version: 1\nrules:\n  - id: v\n    kind: velocity\n    window: 1m\n    threshold: 1\n" \
           f"    edge: {{to: {field}}}\n"
    if field in VERTEX_LABELS:
        assert load_rules_text(text).rules[0].edge_ends() == ("account_id", field)
        return
    with pytest.raises(RulesFileError) as refused:
        load_rules_text(text, name="rules.yaml")
    message = "\n".join(str(i) for i in refused.value.issues)
    assert f"edge end '{field}' is not an entity field" in message
    assert "rules.yaml:" in message and "rule 'v'" in message


@pytest.mark.parametrize("field", FIELDS)
def test_a_window_key_is_a_field_every_store_reads_history_by_or_a_located_error(field: str) -> None:
    text = f"version: 1\nrules:\n  - id: v\n    kind: velocity\n    window: 1m\n    threshold: 1\n    key: {field}\n"
    if is_key_field(field):
        rule = load_rules_text(text).rules[0]
        assert rule.key_field == field
        # Each backend's own history query accepts it (no store is reached: these are pure).
        assert sqlite_key_expression(field)
        assert influx_key_expression(field)
        assert timestream_key_expression(field)
        return
    with pytest.raises(RulesFileError) as refused:
        load_rules_text(text, name="rules.yaml")
    assert [str(i) for i in refused.value.issues] == [
        f"rules.yaml:7 rule 'v' field 'key': cannot group a window by '{field}': use one of "
        f"{', '.join(KEY_FIELDS)}, or attributes.NAME"]


@pytest.mark.parametrize("field", FIELDS)
def test_every_default_edge_end_is_an_entity(field: str) -> None:
    keyed = f"key: {field}, " if is_key_field(field) else ""
    ruleset = load_rules_text(f"""\
version: 1
lists: {{l: {{values: [x]}}}}
rules:
  - {{id: v, kind: velocity, {keyed}window: 1m, threshold: 1}}
  - {{id: f, kind: first_seen, {keyed}field: {field}, window: 1m}}
  - {{id: l, kind: list_match, field: {field}, list: l}}
  - {{id: o, kind: fan_out, {keyed}distinct: {field}, window: 1m, threshold: 1}}
""")
    for rule in ruleset.rules:
        source, target = rule.edge_ends()
        assert source in VERTEX_LABELS and target in VERTEX_LABELS, rule.id
        if rule.id in ("f", "l") and field in VERTEX_LABELS:
            assert target == field  # an entity field stays the edge's end
