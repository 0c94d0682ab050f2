"""Stores and sinks: all of the engine's I/O lives in this package."""

from __future__ import annotations

from pathlib import Path

from chalicelib.settings import Settings
from chalicelib.stores.base import DeadLetterSink, HitSink, TimeSeriesStore, WriteResult
from chalicelib.stores.exceptions import StoreError, TransientStoreError
from chalicelib.stores.graph import GremlinGraphStore
from chalicelib.stores.graph_base import GraphStore, Ring
from chalicelib.stores.gremlin import GremliteConnection, NeptuneConnection, NeptuneSettings
from chalicelib.stores.jsonl import JsonLinesDeadLetterSink, JsonLinesHitSink
from chalicelib.stores.sqlite import SQLiteTimeSeriesStore
from chalicelib.stores.sqlite_graph import SQLiteGraphStore


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
    raise StoreError(f"unknown time-series backend {settings.timeseries_backend!r}")


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
    "open_embedded_graph",
]
