from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.settings import PROJECT_DIR, Settings, SettingsError, split_s3_uri
from chalicelib.stores.timestream import TimestreamTimeSeriesStore
from chalicelib.wiring import build_graph_store, build_timeseries_store


def test_defaults_are_the_embedded_stores() -> None:
    settings = Settings.from_env({})
    assert (settings.timeseries_backend, settings.graph_backend) == ("sqlite", "sqlite")
    assert settings.rules_reload_seconds == 30 and settings.data_dir == Path(".data")
    assert settings.rules_file.name == "rules.yaml" and settings.rules_file.exists()


def test_aws_stage_environment() -> None:
    settings = Settings.from_env({
        "TIMESERIES_BACKEND": "timestream", "TIMESTREAM_DATABASE": "db", "TIMESTREAM_TABLE": "t",
        "GRAPH_BACKEND": "neptune", "NEPTUNE_ENDPOINT": "db.cluster-x.eu-west-1.neptune.amazonaws.com",
        "NEPTUNE_IAM_AUTH": "false", "RULES_S3_URI": "s3://bucket/path/rules.yaml", "AWS_REGION": "eu-west-1",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/dlq", "RULES_RELOAD_SECONDS": "60"})
    assert (settings.timestream_database, settings.timestream_table, settings.aws_region) == ("db", "t", "eu-west-1")
    assert settings.neptune_iam_auth is False and settings.rules_reload_seconds == 60
    assert split_s3_uri(settings.rules_s3_uri) == ("bucket", "path/rules.yaml")
    store = build_timeseries_store(settings)
    assert isinstance(store, TimestreamTimeSeriesStore) and store.database == "db"
    assert store.write_client.meta.region_name == "eu-west-1"


@pytest.mark.parametrize(("env", "words"), [
    ({"TIMESERIES_BACKEND": "influx"}, "TIMESERIES_BACKEND='influx' is not known"),
    ({"GRAPH_BACKEND": "janus"}, "GRAPH_BACKEND='janus' is not known"),
    ({"RULES_RELOAD_SECONDS": "soon"}, "RULES_RELOAD_SECONDS='soon' is not a number"),
    ({"RULES_S3_URI": "bucket/rules.yaml"}, "use s3://BUCKET/KEY"),
    ({"HIT_SINK": "sqs"}, "HIT_SINK='sqs' is not known"),
])
def test_bad_values_say_what_to_do(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError, match=words.replace("(", r"\(")):
        Settings.from_env(env)


def test_neptune_needs_an_endpoint() -> None:
    from chalicelib.stores import StoreError

    with pytest.raises(StoreError, match="NEPTUNE_ENDPOINT"):
        build_graph_store(Settings.from_env({"GRAPH_BACKEND": "neptune"}))
    assert build_graph_store(Settings.from_env({"GRAPH_BACKEND": "none"})) is None


def test_each_sink_is_chosen_by_its_own_setting(tmp_path: Path) -> None:
    from chalicelib.stores import JsonLinesDeadLetterSink, JsonLinesHitSink
    from chalicelib.stores.aws_sinks import LogHitSink, SqsDeadLetterSink
    from chalicelib.wiring import build_pipeline

    queue = {"DATA_DIR": str(tmp_path), "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/dlq"}
    pipeline = build_pipeline(Settings.from_env(queue))
    assert isinstance(pipeline.dead_letters, SqsDeadLetterSink) and isinstance(pipeline.hits, JsonLinesHitSink)
    pipeline.close()
    pipeline = build_pipeline(Settings.from_env({"DATA_DIR": str(tmp_path), "HIT_SINK": "log"}))
    assert isinstance(pipeline.dead_letters, JsonLinesDeadLetterSink) and isinstance(pipeline.hits, LogHitSink)
    pipeline.close()


def test_the_packaged_aws_stage_logs_hits() -> None:
    import json

    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    assert config["stages"]["aws"]["environment_variables"]["HIT_SINK"] == "log"
    assert "HIT_SINK" not in config["stages"]["local"]["environment_variables"]


def test_every_backend_the_settings_accept_is_registered_in_the_wiring() -> None:
    from chalicelib.settings import GRAPH_BACKENDS, TIMESERIES_BACKENDS
    from chalicelib.wiring import graph_backends, timeseries_backends

    assert set(timeseries_backends()) == set(TIMESERIES_BACKENDS)
    assert set(graph_backends()) == set(GRAPH_BACKENDS)


def test_the_embedded_stores_wait_the_busy_timeout_the_settings_give(tmp_path: Path) -> None:
    """SQLITE_BUSY_TIMEOUT_SECONDS reaches both embedded stores' connections (the fault test
    tests/fault/test_busy_stores.py relies on it to wait out a lock in a second)."""
    settings = Settings.from_env({"DATA_DIR": str(tmp_path), "SQLITE_BUSY_TIMEOUT_SECONDS": "0.25"})
    assert settings.sqlite_busy_timeout_seconds == 0.25
    assert Settings.from_env({}).sqlite_busy_timeout_seconds == 10.0
    timeseries, graph = build_timeseries_store(settings), build_graph_store(settings)
    try:
        for store in (timeseries, graph):
            assert store._db.execute("PRAGMA busy_timeout").fetchone()[0] == 250  # type: ignore[union-attr]
    finally:
        timeseries.close()
        assert graph is not None
        graph.close()
