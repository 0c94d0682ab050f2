from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

# Few examples while developing, many in CI (CI=true is set by the CI runner).
settings.register_profile("dev", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

if TYPE_CHECKING:
    from chalicelib.stores.influx import InfluxTimeSeriesStore

PROJECT = Path(__file__).resolve().parent.parent
SEED_SAMPLE = Path(__file__).resolve().parent / "fixtures" / "seed-producer-sample.jsonl"  # copy of shared/data
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _aws_dummy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing in the tests may reach real AWS."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="session")
def influx_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real influxd on loopback for the whole session. Fails (never skips) when it is missing."""
    from tests.influx_server import InfluxServerMissing, running_influxd

    try:
        with running_influxd(tmp_path_factory.mktemp("influxd")) as url:
            yield url
    except InfluxServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def influx_store(influx_url: str) -> Iterator[InfluxTimeSeriesStore]:
    """An InfluxTimeSeriesStore on a fresh database of the session's server."""
    from chalicelib.stores.influx import InfluxConnection, InfluxTimeSeriesStore

    store = InfluxTimeSeriesStore(InfluxConnection(influx_url, f"t_{uuid.uuid4().hex[:12]}"))
    store.create_database()
    yield store
    store.drop_database()
    store.close()
