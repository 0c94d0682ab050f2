"""Stores and sinks: all of the engine's I/O lives in this package."""

from __future__ import annotations

from chalicelib.settings import Settings
from chalicelib.stores.base import DeadLetterSink, HitSink, TimeSeriesStore, WriteResult
from chalicelib.stores.exceptions import StoreError, TransientStoreError
from chalicelib.stores.jsonl import JsonLinesDeadLetterSink, JsonLinesHitSink
from chalicelib.stores.sqlite import SQLiteTimeSeriesStore


def build_timeseries_store(settings: Settings) -> TimeSeriesStore:
    if settings.timeseries_backend == "sqlite":
        return SQLiteTimeSeriesStore(settings.timeseries_path)
    raise StoreError(f"unknown time-series backend {settings.timeseries_backend!r}")


__all__ = [
    "DeadLetterSink",
    "HitSink",
    "JsonLinesDeadLetterSink",
    "JsonLinesHitSink",
    "SQLiteTimeSeriesStore",
    "StoreError",
    "TimeSeriesStore",
    "TransientStoreError",
    "WriteResult",
    "build_timeseries_store",
]
