"""One wiring place: the local runs of the real handler build their pipeline from settings and
leave the process environment alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fraudtools.cli import embedded_handler
from fraudtools.record_files import StreamRecord, kinesis_event, records_from_lines
from tests.conftest import PROJECT, SEED_SAMPLE


def test_the_embedded_handler_runs_without_touching_the_environment(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("TIMESERIES_BACKEND", "sqlite")
    keys = ("DATA_DIR", "RULES_FILE", "GRAPH_BACKEND", "TIMESERIES_BACKEND")
    before = {k: os.environ.get(k) for k in keys}  # (Chalice itself sets AWS_EXECUTION_ENV on a call)
    records = [r for r in records_from_lines(SEED_SAMPLE.read_text().splitlines()[:20]) if isinstance(r, StreamRecord)]
    with embedded_handler(PROJECT / "rules.yaml", tmp_path / "data") as handler:
        assert {k: os.environ.get(k) for k in keys} == before
        response = handler(kinesis_event(records))
    assert {k: os.environ.get(k) for k in keys} == before
    assert response["records"] == len(records) == 20 and response["batchItemFailures"] == []
    assert (tmp_path / "data" / "timeseries.sqlite").exists() and not (tmp_path / "elsewhere").exists()
