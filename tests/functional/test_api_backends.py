"""The investigator's account reads on the InfluxDB time-series backend (a real influxd, as the
AWS default) answer as on SQLite: activity and every rule's window aggregates for the ring."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.api import Investigator
from chalicelib.api.params import ActivityQuery
from chalicelib.rules import StaticRulesSource, load_rules_file
from chalicelib.settings import Settings
from chalicelib.stores import SQLiteGraphStore, SQLiteTimeSeriesStore, TimeSeriesStore
from chalicelib.stores.influx import InfluxTimeSeriesStore
from chalicelib.wiring import build_timeseries_store
from fraudtools.record_files import records_from_lines
from tests.conftest import PROJECT, SEED_SAMPLE
from tests.integration.test_influx_replay import replay

pytestmark = pytest.mark.integration


def answers(open_store: Callable[[], TimeSeriesStore], graph_path: Path) -> dict[str, Any]:
    records = list(records_from_lines(SEED_SAMPLE.read_text().splitlines(), "auto"))
    replay(open_store(), records, graph_path, 100)  # closes what it used, as a finished run does
    investigator = Investigator(StaticRulesSource(load_rules_file(PROJECT / "rules.yaml")), open_store(),
                                SQLiteGraphStore(graph_path))
    try:
        out: dict[str, Any] = {}
        for account in ("1234-5678-20", "1234-5678-28", "1234-5678-47"):
            activity = investigator.activity(account, ActivityQuery(limit=500))["items"]
            out[account] = {"activity": [{k: v for k, v in e.items() if k != "seq"} for e in activity],
                            "aggregates": investigator.aggregates(account)}
        return out
    finally:
        investigator.close()


def test_account_reads_agree_on_sqlite_and_influxdb(influx_url: str, tmp_path: Path) -> None:
    expected = answers(lambda: SQLiteTimeSeriesStore(tmp_path / "ts.sqlite"), tmp_path / "g1.sqlite")
    database = f"api_{uuid.uuid4().hex[:10]}"
    settings = Settings.from_env({"TIMESERIES_BACKEND": "influxdb", "INFLUXDB_URL": influx_url,
                                  "INFLUXDB_DATABASE": database})
    created = build_timeseries_store(settings)
    assert isinstance(created, InfluxTimeSeriesStore)
    created.create_database()
    created.close()
    got = answers(lambda: build_timeseries_store(settings), tmp_path / "g2.sqlite")
    assert expected["1234-5678-20"]["activity"], "the ring account must have events"
    assert got == expected
