"""A GraphConnection that records every request - its Gremlin text, its rows and its size on the
wire - for tests and the request-counting benchmark of the Neptune path, without Neptune.

Reads are answered by an optional inner connection (gremlite holding the same data); writes are
only recorded (the merge form cannot run on gremlite).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from gremlin_python.driver.request import RequestMessage
from gremlin_python.driver.serializer import GraphBinarySerializersV1
from gremlin_python.process.graph_traversal import GraphTraversal
from gremlin_python.process.translator import Translator
from gremlin_python.process.traversal import Bytecode
from gremlin_python.structure.graph import Graph

from chalicelib.stores.exceptions import StoreError
from chalicelib.stores.gremlin_connection import GraphConnection, Want


@dataclass(frozen=True)
class Request:
    text: str  # Gremlin text with the injected rows shown as `rows` (in inject() and constant())
    rows: int  # rows injected (0 for a request without inject)
    bytes: int  # GraphBinary size of the request message, as the driver would send it
    write: bool


@dataclass
class RecordingConnection(GraphConnection):
    inner: GraphConnection | None = None
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.g = Graph().traversal()
        self._serializer = GraphBinarySerializersV1()

    def run(self, t: Any, want: Want = "list") -> Any:
        self.requests.append(self.describe(t, write=want == "iterate"))
        if want == "iterate" or self.inner is None:
            return None if want == "iterate" else []
        return self.inner.run(_rebind(t, self.inner.g), want)

    def describe(self, t: Any, write: bool) -> Request:
        bytecode = t.bytecode
        message = RequestMessage(processor="traversal", op="bytecode",
                                 args={"gremlin": bytecode, "aliases": {"g": "g"}})
        size = len(self._serializer.serialize_message(str(uuid.uuid4()), message))
        rows = sum(len(step[1]) for step in bytecode.step_instructions if _injects_rows(step))
        shown = Bytecode(bytecode)
        shown.step_instructions = [[step[0], _Rows()] if _injects_rows(step) else step
                                   for step in bytecode.step_instructions]
        return Request(Translator("g").translate(shown), rows, size, write)

    def _translate(self, exc: Exception) -> StoreError:
        return StoreError(f"recorded graph failed: {exc}")

    def commit(self) -> None:
        """Each request commits alone (as on Neptune)."""

    def rollback(self) -> None:
        """Nothing to roll back."""

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()


class _Rows:
    """Stands for the injected rows in the recorded text."""

    def __repr__(self) -> str:
        return "rows"


def _injects_rows(step: list[Any]) -> bool:
    return step[0] in ("inject", "constant") and len(step) == 2 and isinstance(step[1], list)


def _rebind(t: Any, g: Any) -> Any:
    """The same traversal on another traversal source."""
    return GraphTraversal(g.graph, g.traversal_strategies, Bytecode(t.bytecode))
