"""Stores and sinks: all of the engine's I/O lives in this package (built from `Settings` in
`chalicelib.wiring`, where each backend registers by name).

The Gremlin graph and its connections (gremlin_python) are imported on first use of their
names, so a process on the embedded SQLite stores does not load the Gremlin client."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chalicelib.stores.base import DeadLetterSink, HitSink, TimeSeriesStore, WriteResult
from chalicelib.stores.exceptions import StoreError, TransientStoreError
from chalicelib.stores.graph_base import GraphStore, Ring
from chalicelib.stores.jsonl import JsonLinesDeadLetterSink, JsonLinesHitSink
from chalicelib.stores.sqlite import SQLiteTimeSeriesStore
from chalicelib.stores.sqlite_graph import SQLiteGraphStore

if TYPE_CHECKING:
    from chalicelib.stores.gremlin_connection import GremliteConnection, NeptuneConnection, NeptuneSettings
    from chalicelib.stores.gremlin_graph import GremlinGraphStore

_LAZY = {"GremliteConnection": "gremlin_connection", "NeptuneConnection": "gremlin_connection",
         "NeptuneSettings": "gremlin_connection", "GremlinGraphStore": "gremlin_graph"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"chalicelib.stores.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
