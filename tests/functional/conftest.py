"""Fixtures shared by the functional tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.test import Client

import app as chalice_app
from tests.conftest import PROJECT


@pytest.fixture
def handler_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The Chalice test client on the deployed app, its embedded stores in a fresh directory."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RULES_FILE", str(PROJECT / "rules.yaml"))
    chalice_app.reset_pipeline()
    with Client(chalice_app.app, project_dir=str(PROJECT), stage_name="local") as test_client:
        yield test_client
    chalice_app.reset_pipeline()
