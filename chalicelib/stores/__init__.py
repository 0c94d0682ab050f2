"""Stores and sinks: all of the engine's I/O lives in this package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.settings import Settings
from chalicelib.stores.base import DeadLetterSink, HitSink, TimeSeriesStore, WriteResult
from chalicelib.stores.exceptions import StoreError, TransientStoreError
from chalicelib.stores.graph_base import GraphStore, Ring
from chalicelib.stores.gremlin_connection import GremliteConnection, NeptuneConnection, NeptuneSettings
from chalicelib.stores.gremlin_graph import GremlinGraphStore
from chalicelib.stores.jsonl import JsonLinesDeadLetterSink, JsonLinesHitSink
from chalicelib.stores.sqlite import SQLiteTimeSeriesStore
from chalicelib.stores.sqlite_graph import SQLiteGraphStore

if TYPE_CHECKING:
    from chalicelib.stores.influx import InfluxConnection


def build_graph_store(settings: Settings) -> GraphStore | None:
    """The graph the settings name: SQLite tables (default) or gremlite under the data
    directory, Neptune, or none."""
    if settings.graph_backend == "none":
        return None
    if settings.graph_backend == "neptune":
        if not settings.neptune_endpoint:
            raise StoreError("GRAPH_BACKEND=neptune needs NEPTUNE_ENDPOINT (the cluster endpoint host name)")
        return GremlinGraphStore(
            NeptuneConnection(NeptuneSettings(settings.neptune_endpoint, settings.neptune_port, settings.aws_region,
                                              settings.neptune_iam_auth)),
            write_form=settings.neptune_write_form,
            last_seen_granularity_ms=int(settings.neptune_last_seen_granularity_s * 1000))
    if settings.graph_backend == "gremlite":
        return GremlinGraphStore(GremliteConnection(settings.graph_path))
    return SQLiteGraphStore(settings.sqlite_graph_path)


def open_embedded_graph(data_dir: Path) -> GraphStore | None:
    """The embedded graph a run left in `data_dir` (SQLite tables, else gremlite), or None."""
    settings = Settings(data_dir=data_dir)
    if settings.sqlite_graph_path.exists():
        return SQLiteGraphStore(settings.sqlite_graph_path)
    if settings.graph_path.exists():
        return GremlinGraphStore(GremliteConnection(settings.graph_path))
    return None


def build_timeseries_store(settings: Settings) -> TimeSeriesStore:
    if settings.timeseries_backend == "sqlite":
        return SQLiteTimeSeriesStore(settings.timeseries_path)
    if settings.timeseries_backend == "timestream":
        import boto3  # the AWS SDK is only imported on the AWS path

        from chalicelib.stores.timestream import TimestreamTimeSeriesStore

        return TimestreamTimeSeriesStore(
            settings.timestream_database, settings.timestream_table,
            write_client=boto3.client("timestream-write", region_name=settings.aws_region),
            query_client=boto3.client("timestream-query", region_name=settings.aws_region))
    if settings.timeseries_backend == "influxdb":
        from chalicelib.stores.influx import InfluxTimeSeriesStore

        return InfluxTimeSeriesStore(influx_connection(settings))
    raise StoreError(f"unknown time-series backend {settings.timeseries_backend!r}")


def influx_connection(settings: Settings, secrets_client: Any = None) -> InfluxConnection:
    """Where and how to reach InfluxDB. Credentials come from the Secrets Manager secret
    INFLUXDB_SECRET_ARN (JSON: `token`, or `username` + `password`), read once per cold start;
    without a secret the server must allow anonymous access (a local test server)."""
    from chalicelib.stores.influx import InfluxConnection

    if not settings.influxdb_url:
        raise StoreError("TIMESERIES_BACKEND=influxdb needs INFLUXDB_URL (e.g. https://HOST:8086)")
    credentials: dict[str, Any] = {}
    if settings.influxdb_secret_arn:
        if secrets_client is None:
            import boto3

            secrets_client = boto3.client("secretsmanager", region_name=settings.aws_region)
        try:
            text = secrets_client.get_secret_value(SecretId=settings.influxdb_secret_arn)["SecretString"]
            credentials = json.loads(text)
        except Exception as exc:  # any failure here means: cannot authenticate
            # the message names the secret, never its content
            raise StoreError(f"cannot read the InfluxDB credentials from {settings.influxdb_secret_arn}: "
                             f"{type(exc).__name__}") from None  # not `from exc`: it may quote the secret
        if not isinstance(credentials, dict) or not (credentials.get("token") or credentials.get("username")):
            raise StoreError(f"secret {settings.influxdb_secret_arn} holds no InfluxDB credentials: "
                             "store JSON with 'token', or 'username' and 'password'")
    return InfluxConnection(
        url=settings.influxdb_url, database=settings.influxdb_database,
        retention_policy=settings.influxdb_retention_policy, token=str(credentials.get("token", "")),
        username=str(credentials.get("username", "")), password=str(credentials.get("password", "")),
        timeout_s=settings.influxdb_timeout_seconds, ca_bundle=settings.influxdb_ca_bundle)


__all__ = [
    "DeadLetterSink",
    "GraphStore",
    "GremlinGraphStore",
    "GremliteConnection",
    "HitSink",
    "JsonLinesDeadLetterSink",
    "JsonLinesHitSink",
    "NeptuneConnection",
    "Ring",
    "SQLiteGraphStore",
    "SQLiteTimeSeriesStore",
    "StoreError",
    "TimeSeriesStore",
    "TransientStoreError",
    "WriteResult",
    "build_graph_store",
    "build_timeseries_store",
    "influx_connection",
    "open_embedded_graph",
]
