"""The one retry policy: full-jitter exponential backoff under a cap."""

from __future__ import annotations

import random

from chalicelib.retry import Backoff


def test_delays_are_jittered_below_a_doubling_ceiling_and_the_cap() -> None:
    policy = Backoff(attempts=8, base_delay_s=0.1, max_delay_s=1.0)
    rng = random.Random(3)
    for attempt in range(8):
        ceiling = min(1.0, 0.1 * 2**attempt)
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2 and min(delays) < ceiling / 2  # spread, not a fixed step


def test_the_last_attempt_is_known() -> None:
    policy = Backoff(attempts=3)
    assert [policy.is_last(n) for n in range(3)] == [False, False, True]
