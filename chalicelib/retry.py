"""The one retry policy of every client that retries: full-jitter exponential backoff with a cap.

Attempt n (from 0) that failed waits uniform(0, min(cap, base * 2**n)) before attempt n + 1
(AWS's "full jitter": retrying writers spread out instead of colliding again in step). The
caller owns the loop, because what counts as retryable differs per backend; it injects `sleep`
and the random source, so tests neither wait nor guess.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    attempts: int = 5  # calls in all, the first included
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """How long to wait after failed attempt `attempt` (0-based)."""
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))

    def is_last(self, attempt: int) -> bool:
        return attempt >= self.attempts - 1
