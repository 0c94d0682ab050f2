"""The collector between batches (chalicelib/collector.py): what a batch dropped in a cycle is
freed, what it leaves is frozen, and a cycle stranded in the frozen generation is freed at the
next thaw - so memory stays bounded in a warm process."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from chalicelib.collector import BatchCollector


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    yield
    gc.unfreeze()  # leave the test process's collector as it found it


def test_a_cycle_dropped_during_the_batch_is_freed_not_frozen() -> None:
    collector = BatchCollector(thaw_every=1000)
    node = Node()
    alive = weakref.ref(node)
    del node
    collector.after_batch()
    assert alive() is None


def test_what_a_batch_leaves_is_frozen_and_a_stranded_cycle_is_freed_at_the_thaw() -> None:
    collector = BatchCollector(thaw_every=3)
    kept = Node()
    alive = weakref.ref(kept)
    collector.after_batch()  # batch 1: `kept` is still in use, so it is frozen
    assert gc.get_freeze_count() > 0
    del kept  # a frozen cycle dropped: reference counting cannot free it
    collector.after_batch()  # batch 2
    gc.collect()  # not even a full collection walks the frozen generation
    assert alive() is not None
    collector.after_batch()  # batch 3: thaw, collect everything, freeze again
    assert alive() is None


def test_everything_is_collected_once_the_frozen_objects_have_doubled() -> None:
    collector = BatchCollector(thaw_every=1000)
    collector.after_batch()  # batch 1: the baseline
    kept = Node()
    alive = weakref.ref(kept)
    collector.after_batch()  # batch 2: frozen
    del kept
    collector.after_batch()
    assert alive() is not None  # stranded in the frozen generation
    growth = [[] for _ in range(gc.get_freeze_count() + 1)]  # the state more than doubles
    collector.after_batch()  # thaw, collect everything, freeze again
    assert alive() is None
    del growth


def test_the_lambda_handler_runs_the_collector_after_each_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import app

    calls: list[int] = []

    class Pipeline:
        def process_kinesis_event(self, event: object) -> dict[str, object]:
            return {"batchItemFailures": []}

    monkeypatch.setattr(app, "get_pipeline", lambda: Pipeline())
    monkeypatch.setattr(app._collector, "after_batch", lambda: calls.append(1))
    assert app.on_transactions({"Records": []}, None) == {"batchItemFailures": []}
    assert calls == [1]
