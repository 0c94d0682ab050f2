"""The cyclic garbage collector between batches, for the processes that own a batch loop.

A warm process keeps a growing state across batches (the window cache's keys and aggregates,
the graph's link mirror, the compiled rules): tens of thousands of GC-tracked objects. CPython's
full collections walk all of it, and a batch sets one off every few hundred young collections:
about 26 full collections of ~25 ms each in a 35-batch replay of 10 simulated days, ~10% of the
run, to find nothing (a batch leaves no cyclic garbage behind). `after_batch` moves what
survived the batch into the permanent generation (`gc.freeze`), so later collections walk only
what the next batch makes. The young generations are collected first (well under a millisecond),
so a cycle the batch dropped lately is freed rather than frozen. What is frozen is still freed by
reference counting when its last reference goes; only a cycle that was frozen (it reached the old
generation during the batch, or became garbage after being frozen) would stay, so everything is
unfrozen and collected once when the frozen objects have doubled since the last such collection,
and at least every `thaw_every` batches: the memory it can strand is bounded by what those batches
leave, and a batch of the pipeline leaves none (measured: no cycle found by a full collection after
any batch of the 10-day replay). Doubling keeps the full collections' cost in proportion to the
state's growth, whatever the batch size (at a fixed 64 batches, a replay at batch 100 spent more
on them than the collector saved).

Freezing is process-wide, so it is the process owner's choice, made once per batch by the code
that runs the batch loop (the Lambda handler in app.py, the CLI's replay), never by library code.
"""

from __future__ import annotations

import gc

#: the most batches between two full collections of everything, for a state that stops growing
#: (a full collection over a warm process's state costs tens of milliseconds)
THAW_EVERY = 1024


class BatchCollector:
    def __init__(self, thaw_every: int = THAW_EVERY) -> None:
        self.thaw_every = thaw_every
        self.batches = 0
        self._thawed_at = 0  # the batch of the last full collection
        self._frozen_then = 0  # objects frozen right after it
        self._frozen_since = 0  # objects frozen by the batches since

    def after_batch(self) -> None:
        """Call once a batch is done and its objects dropped (between batches)."""
        self.batches += 1
        gc.collect(1)  # the young generations: a batch's dropped cycles are freed, not frozen
        # what survived since the last freeze is now the old generation (the rest is frozen); it is
        # counted here because `gc.get_freeze_count()` walks every frozen object
        self._frozen_since += len(gc.get_objects(generation=2))
        gc.freeze()
        if self.batches == 1:  # the baseline is what the process holds after its first batch
            self._frozen_then, self._frozen_since = gc.get_freeze_count(), 0
        elif self.batches - self._thawed_at >= self.thaw_every or self._frozen_since > self._frozen_then:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._thawed_at, self._frozen_then, self._frozen_since = self.batches, gc.get_freeze_count(), 0
