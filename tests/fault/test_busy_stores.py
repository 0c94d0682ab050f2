"""A store held locked past its busy timeout: the batch fails as a transient error and is
redelivered, the run finishes, and every store ends as in a clean run."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.fault.conftest import BATCH_SIZE, CleanRun, Stream
from tests.fault.harness import (
    STORE_FILES,
    DataDir,
    Replay,
    assert_same_stores,
    jsonl_by_id,
    stored_events,
)

pytestmark = pytest.mark.fault

#: what the embedded stores wait for a lock before giving up (the SQLITE_BUSY_TIMEOUT_SECONDS setting;
#: 10 s by default): short here, so each case waits out the timeout in a couple of seconds
BUSY_TIMEOUT_S = 0.5


@pytest.mark.parametrize("store", STORE_FILES)
def test_a_batch_locked_out_past_the_busy_timeout_is_redelivered(store: str, stream: Stream, clean_run: CleanRun,
                                                                 tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "hits.jsonl"
    run = Replay.start(stream.path, data, out, BATCH_SIZE, verbose=True,
                       env={"SQLITE_BUSY_TIMEOUT_SECONDS": str(BUSY_TIMEOUT_S)})
    while stored_events(data) < len(stream.event_ids) // 3:
        assert run.process.poll() is None, run.log.read_text()[-3000:]
        time.sleep(0.005)
    other_writer = sqlite3.connect(data / store, timeout=60, isolation_level=None)
    try:
        other_writer.execute("BEGIN IMMEDIATE")
        time.sleep(BUSY_TIMEOUT_S + 1.5)
        assert run.process.poll() is None, "the replay gave up while the store was locked"
    finally:
        other_writer.execute("ROLLBACK")
        other_writer.close()
    summary = run.finish()

    log = run.log.read_text()
    assert "will be redelivered" in log and "busy" in log, log[-3000:]
    assert summary == clean_run.summary
    hits, times = jsonl_by_id(out, "hit_id")
    assert max(times.values()) == 1
    assert_same_stores(DataDir.read(data), hits, clean_run.data, clean_run.hits)


def test_the_stores_open_while_another_writer_holds_their_locks(tmp_path: Path) -> None:
    """A process starting up (a cold Lambda container, a second replay) does not wait for the
    write locks of one that is busy writing batches."""
    from chalicelib.stores import GremliteConnection, SQLiteGraphStore, SQLiteTimeSeriesStore

    openers = {"graph.sqlite": lambda: GremliteConnection(tmp_path / "graph.sqlite", timeout_s=0.5),
               "entity-graph.sqlite": lambda: SQLiteGraphStore(tmp_path / "entity-graph.sqlite", busy_timeout_s=0.5),
               "timeseries.sqlite": lambda: SQLiteTimeSeriesStore(tmp_path / "timeseries.sqlite", busy_timeout_s=0.5)}
    for open_store in openers.values():
        open_store().close()  # the files exist, as they do once a writer has run
    for name, open_store in openers.items():
        other_writer = sqlite3.connect(tmp_path / name, isolation_level=None)
        try:
            other_writer.execute("BEGIN IMMEDIATE")
            open_store().close()
        finally:
            other_writer.execute("ROLLBACK")
            other_writer.close()
