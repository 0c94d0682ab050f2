"""The habit_burst kind: several payments within the burst, each above factor x the habit before it."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.events import Transaction
from chalicelib.rules import RulesFileError
from tests.unit.test_kinds import rule, tx

RULE = "{id: b, kind: habit_burst, window: 7d, burst: 1h, factor: 4, threshold: 1, min_history: 3}"
HOUR = 3600


def habit(n: int = 3, amount: int = 50) -> list[Transaction]:
    return [tx(i, ts_s=i * 86400, amount=amount) for i in range(n)]


def test_two_large_payments_within_the_hour_fire_one_does_not() -> None:
    r = rule(RULE)
    base = habit()
    first = tx(10, ts_s=3 * 86400, amount=201)
    assert r.judge(first, [*base, first]) is None  # a one-off
    second = tx(11, ts_s=3 * 86400 + 1800, amount=250)
    finding = r.judge(second, [*base, first, second])
    assert finding is not None and finding.value == 2 and finding.threshold == 1
    assert finding.evidence["habit_mean"] == 50 and finding.evidence["event_ids"] == ["e10", "e11"]


def test_the_event_itself_must_stand_out_and_the_habit_must_be_long_enough() -> None:
    r = rule(RULE)
    base = habit()
    big = tx(10, ts_s=3 * 86400, amount=500)
    small = tx(11, ts_s=3 * 86400 + 60, amount=200)  # 200 is not > 4 x 50
    assert r.judge(small, [*base, big, small]) is None
    short = habit(2)
    again = tx(12, ts_s=3 * 86400 + 120, amount=500)
    assert r.judge(again, [*short, big, again]) is None  # two payments of habit < min_history 3


def test_a_payment_exactly_one_burst_old_belongs_to_the_habit() -> None:
    r = rule(RULE)
    base = habit()
    old = tx(10, ts_s=3 * 86400, amount=5000)
    now = tx(11, ts_s=3 * 86400 + HOUR, amount=5000)
    # old is in the habit (mean (150 + 5000) / 4 = 1287.5, x4 = 5150): now does not stand out
    assert r.judge(now, [*base, old, now]) is None


def test_burst_must_be_shorter_than_the_window() -> None:
    with pytest.raises(RulesFileError):
        rule("{id: b, kind: habit_burst, window: 1h, burst: 1h, factor: 4}")


@given(st.lists(st.tuples(st.integers(0, 8 * 24), st.integers(1, 500)), min_size=1, max_size=14),
       st.integers(2, 6), st.integers(1, 3))
@settings(max_examples=150)
def test_matches_a_brute_force_reading(payments: list[tuple[int, int]], factor: int, threshold: int) -> None:
    r = rule(f"{{id: b, kind: habit_burst, window: 7d, burst: 2h, factor: {factor}, threshold: {threshold},"
             " min_history: 2}")
    events = sorted((tx(i, ts_s=hour * HOUR, amount=amount) for i, (hour, amount) in enumerate(payments)),
                    key=lambda e: (e.ts, e.event_id))
    event = events[-1]
    window = [e for e in events if (event.ts - e.ts).total_seconds() < 7 * 86400]
    habit_amounts = [Fraction(int(e.amount)) for e in window if (event.ts - e.ts).total_seconds() >= 2 * HOUR]
    expected = False
    if len(habit_amounts) >= 2:
        mean = sum(habit_amounts) / len(habit_amounts)
        burst = [e for e in window if (event.ts - e.ts).total_seconds() < 2 * HOUR and int(e.amount) > factor * mean]
        expected = int(event.amount) > factor * mean and len(burst) > threshold
    assert (r.judge(event, window) is not None) is expected
