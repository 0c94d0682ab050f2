"""Stores and sinks: all of the engine's I/O lives in this package (built from `Settings` in
`chalicelib.wiring`, where each backend registers by name)."""

from __future__ import annotations

from chalicelib.stores.base import DeadLetterSink, HitSink, TimeSeriesStore, WriteResult
from chalicelib.stores.exceptions import StoreError, TransientStoreError
from chalicelib.stores.graph_base import GraphStore, Ring
from chalicelib.stores.gremlin_connection import GremliteConnection, NeptuneConnection, NeptuneSettings
from chalicelib.stores.gremlin_graph import GremlinGraphStore
from chalicelib.stores.jsonl import JsonLinesDeadLetterSink, JsonLinesHitSink
from chalicelib.stores.sqlite import SQLiteTimeSeriesStore
from chalicelib.stores.sqlite_graph import SQLiteGraphStore

__all__ = [
    "DeadLetterSink",
    "GraphStore",
    "GremlinGraphStore",
    "GremliteConnection",
    "HitSink",
    "JsonLinesDeadLetterSink",
    "JsonLinesHitSink",
    "NeptuneConnection",
    "NeptuneSettings",
    "Ring",
    "SQLiteGraphStore",
    "SQLiteTimeSeriesStore",
    "StoreError",
    "TimeSeriesStore",
    "TransientStoreError",
    "WriteResult",
]
