"""Window memory for a month (issue 20): rows older than every shorter window keep only what the
longest window's rules read, and no answer changes - in order, with late events whose shorter
windows reach below the slim rows, and with keys evicted and reloaded."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from chalicelib.events import Transaction
from chalicelib.pipeline import Pipeline
from chalicelib.rules import StaticRulesSource, load_rules_text
from chalicelib.rules.window_rows import layouts_of
from chalicelib.rules.windows import WindowCache
from chalicelib.stores import SQLiteTimeSeriesStore
from fraudtools.testing.reference import assert_hits_agree, reference_hits
from tests.fakes import MemoryDeadLetterSink, MemoryHitSink, raw_records
from tests.strategies import BASE

RULES = load_rules_text("""
version: 1
rules:
  - {id: new-device, kind: first_seen, key: account_id, field: device_id, window: 30d, min_history: 2}
  - {id: spike, kind: amount_spike, key: account_id, window: 7d, factor: 3, min_history: 2}
  - {id: busy, kind: velocity, key: account_id, window: 1d, threshold: 2}
""")


def month() -> list[Transaction]:
    """Two accounts over 40 days, a few events a day, devices coming back after weeks, some
    events arriving days late (their 7-day windows reach below the slim rows)."""
    events = []
    for day in range(40):
        for n, account in enumerate(("a", "b")):
            for hour in (1, 9, 17):
                device = f"d{(day // 9 + hour + n) % 4}"
                amount = Decimal(900 if (day * 3 + hour) % 29 == 0 else 40 + hour)
                events.append(Transaction(event_id=f"{account}-{day}-{hour}", account_id=account, amount=amount,
                                          device_id=device, ts=BASE + timedelta(days=day, hours=hour)))
        if day % 6 == 5:  # late: stamped 9 days ago, arriving now
            events.append(Transaction(event_id=f"late-{day}", account_id="a", amount=Decimal(2000),
                                      device_id="d-late", ts=BASE + timedelta(days=day - 9, hours=5)))
    return events


def test_layout_puts_the_longest_windows_fields_first_and_slims_the_rest() -> None:
    layout = layouts_of(RULES)["account_id"]
    assert layout.fields == ("account_id", "device_id", "amount")
    assert layout.short_ms == 7 * 86_400_000 and layout.slim_width == 5
    assert [s.whole_rows for s in layout.slots] == [False, True, True]
    assert layout.slim((1, 2, "e", "a", "d", Decimal(5), 7)) == (1, 2, "e", "a", "d", 7)
    assert layout.slim_bytes < layout.full_bytes


@pytest.mark.parametrize("cache_bytes", [2**30, 40_000])
def test_slim_rows_change_no_answer(tmp_path: Path, cache_bytes: int) -> None:
    stream = month()
    hits = MemoryHitSink()
    made = Pipeline(StaticRulesSource(RULES), SQLiteTimeSeriesStore(tmp_path / "ts.sqlite"), hits,
                    MemoryDeadLetterSink())
    made.windows = WindowCache(cache_bytes)
    records = raw_records(stream)
    slim_seen = 0
    for start in range(0, len(records), 7):
        made.process(records[start:start + 7])
        slim_seen = max(slim_seen, sum(k.slimmed for k in made.windows._keys.values()))
    made.close()
    assert slim_seen > 0
    if cache_bytes < 2**20:
        assert made.windows.stats["evicted_keys"] > 0  # evicted keys reload whole and slim again
    assert made.windows.stats["late_rows"] > 0
    assert_hits_agree(hits.hits.values(), reference_hits(RULES, stream))
