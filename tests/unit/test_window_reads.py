"""The reads a warm window cache plans (issue 20): a batch whose events are exactly the arrivals
right after the last batch it judged needs no delta read for the keys it holds (their new rows are
the batch's own events); once another writer has stored anything in between, the held keys read
their deltas again, and the answers are the reference's either way."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from chalicelib.events import Transaction
from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource, load_rules_text
from chalicelib.stores import SQLiteTimeSeriesStore
from fraudtools.testing.reference import assert_hits_agree, reference_hits
from tests.fakes import MemoryDeadLetterSink, MemoryHitSink, raw_records
from tests.strategies import BASE

RULES = load_rules_text("""
version: 1
rules:
  - {id: busy, kind: velocity, key: account_id, window: 1h, threshold: 2}
  - {id: big, kind: amount_spike, key: account_id, window: 1h, factor: 3, min_history: 2}
""")


def event(n: int, account: str = "a", amount: int = 10) -> Transaction:
    return Transaction(event_id=f"e{n}", account_id=account, amount=Decimal(amount),
                       ts=BASE + timedelta(minutes=n))


def pipeline(path: Path, hits: MemoryHitSink) -> Pipeline:
    return Pipeline(StaticRulesSource(RULES), SQLiteTimeSeriesStore(path), hits, MemoryDeadLetterSink())


def test_a_batch_right_after_the_last_one_reads_nothing_for_the_keys_held(tmp_path: Path) -> None:
    made = pipeline(tmp_path / "ts.sqlite", MemoryHitSink())
    made.process(raw_records([event(1), event(2)]))
    pending = made.timeseries.write([event(3), event(4, "b")]).pending
    reads = made.windows.reads(RULES, pending)
    assert [(r.purpose, sorted(r.keys)) for r in reads] == [("load", ["b"])]  # "a" is held: no read
    made.close()


def test_another_writer_in_between_brings_the_delta_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "ts.sqlite"
    made = pipeline(path, MemoryHitSink())
    made.process(raw_records([event(1), event(2)]))
    SQLiteTimeSeriesStore(path).write([event(3)])  # another shard, same key
    pending = made.timeseries.write([event(4)]).pending
    assert [r.purpose for r in made.windows.reads(RULES, pending)] == ["delta"]
    made.close()


def test_the_answers_are_the_reference_s_with_and_without_other_writers(tmp_path: Path) -> None:
    stream = [event(n, "ab"[n % 3 == 0], 500 if n % 5 == 4 else 10) for n in range(1, 25)]
    hits = MemoryHitSink()
    one, other = pipeline(tmp_path / "ts.sqlite", hits), pipeline(tmp_path / "ts.sqlite", hits)
    records = raw_records(stream)
    # batches of 3; every fourth goes through the other pipeline (another shard on the same store)
    for index, start in enumerate(range(0, len(records), 3)):
        (other if index % 4 == 3 else one).process(records[start:start + 3])
    assert one.windows.stats["own_rows"] > 0 and one.windows.stats["delta_rows"] > 0
    assert_hits_agree(hits.hits.values(), reference_hits(RULES, stream))
    one.close()
    other.close()
