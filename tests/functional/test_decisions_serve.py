"""`serve --data-dir DIR --rules FILE` answers POST /api/decisions through the real local server,
on a directory that does not exist yet: it creates the embedded stores, the decision's hits are
in them for the investigator's API, and the page's recent decisions list it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT
from tests.serving import serving


@pytest.fixture
def new_dir_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path / "new" / "decisions"
    with serving(data_dir, "--rules", str(PROJECT / "rules.yaml")) as url:
        yield url, data_dir


def call(url: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"},
                                     method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_serve_answers_decisions_on_a_new_directory(new_dir_server: tuple[str, Path]) -> None:
    server, data_dir = new_dir_server
    payment = {"event_id": "pay-1", "account_id": "acct-9", "amount": 20, "ip": "203.0.113.66",
               "ts": "2026-11-01T10:00:00Z"}
    status, answer = call(f"{server}/api/decisions", json.dumps(payment).encode())
    assert status == 200, answer
    assert (answer["event_id"], answer["decision"]) == ("pay-1", "decline")
    assert (data_dir / "timeseries.sqlite").exists() and (data_dir / "entity-graph.sqlite").exists()

    status, again = call(f"{server}/api/decisions", json.dumps(payment).encode())
    assert status == 200 and again["hits"] == answer["hits"] and again["decision"] == "decline"

    status, hits = call(f"{server}/api/accounts/acct-9/hits")
    assert status == 200 and [h["hit_id"] for h in hits["items"]] == [h["hit_id"] for h in answer["hits"]]
    status, recent = call(f"{server}/api/decisions?limit=5")
    assert status == 200 and [d["event_id"] for d in recent["decisions"]] == ["pay-1"]

    status, refused = call(f"{server}/api/decisions", b'{"event_id": "x", "account_id": "a", "amount": "NaN"}')
    assert status == 400 and refused["field"] in {"amount", "ts"}
