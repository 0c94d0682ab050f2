"""Stores and sinks: all of the engine's I/O lives in this package."""

from __future__ import annotations

from chalicelib.settings import Settings
from chalicelib.stores.base import DeadLetterSink, HitSink, TimeSeriesStore, WriteResult
from chalicelib.stores.exceptions import StoreError, TransientStoreError
from chalicelib.stores.graph import GraphStore
from chalicelib.stores.gremlin import GremliteConnection, NeptuneConnection, NeptuneSettings
from chalicelib.stores.jsonl import JsonLinesDeadLetterSink, JsonLinesHitSink
from chalicelib.stores.sqlite import SQLiteTimeSeriesStore


def build_graph_store(settings: Settings) -> GraphStore | None:
    """The graph the settings name: gremlite under the data directory, Neptune, or none."""
    if settings.graph_backend == "none":
        return None
    if settings.graph_backend == "neptune":
        if not settings.neptune_endpoint:
            raise StoreError("GRAPH_BACKEND=neptune needs NEPTUNE_ENDPOINT (the cluster endpoint host name)")
        return GraphStore(NeptuneConnection(NeptuneSettings(
            settings.neptune_endpoint, settings.neptune_port, settings.aws_region, settings.neptune_iam_auth)))
    return GraphStore(GremliteConnection(settings.graph_path))


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
    "GremliteConnection",
    "HitSink",
    "JsonLinesDeadLetterSink",
    "JsonLinesHitSink",
    "NeptuneConnection",
    "SQLiteTimeSeriesStore",
    "StoreError",
    "TimeSeriesStore",
    "TransientStoreError",
    "WriteResult",
    "build_graph_store",
    "build_timeseries_store",
]
