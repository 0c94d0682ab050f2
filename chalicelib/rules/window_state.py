"""Per-key state of the window cache (the second of the three jobs of `rules/windows.py`; see
there): one key's held rows, what they cover, and each rule's running aggregate over them."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from chalicelib.rules.base import WindowAggregate
from chalicelib.rules.window_rows import SEQ, TS, Row

AFTER_ALL = 1 << 62  # larger than any seq


#: the full floor of a key with no slim rows: below the start of any window of any event
NOTHING_SLIM = -(1 << 62)


@dataclass(slots=True)
class Running:
    """A rule's aggregate over rows [lo, hi) (absolute positions) of one key."""

    aggregate: WindowAggregate
    lo: int
    hi: int


@dataclass(slots=True)
class KeyWindow:
    rows: list[Row]  # sorted by (ts, seq)
    floor: int  # every stored row with floor < ts and seq <= high_water is in `rows`
    high_water: int
    base: int = 0  # absolute position of rows[0] (rows leave from the front)
    bytes: int = 0  # estimated memory, as of the last batch that touched the key
    running: dict[int, Running] = field(default_factory=dict)  # by rule bit
    #: held rows with ts <= full_floor may be slim (`RowLayout.slim`): only the rules of the
    #: longest window judge from them; the others read the store for windows reaching below it
    #: (below any window start until rows are slimmed: events may be at or before the epoch)
    full_floor: int = NOTHING_SLIM
    slimmed: int = 0  # rows[:slimmed] are slim

    def slim_older(self, full_floor: int, slim: Callable[[Row], Row], whole_rules: Iterable[int]) -> None:
        """Slim the rows with ts <= full_floor. The running aggregates of `whole_rules` (bits)
        that reach them are dropped (they would remove slim rows) and rebuild when next used."""
        self.full_floor = full_floor = max(full_floor, self.full_floor)
        rows = self.rows
        upto = bisect.bisect_right(rows, (full_floor, AFTER_ALL))
        if upto <= self.slimmed:
            return
        for position in range(self.slimmed, upto):
            rows[position] = slim(rows[position])
        self.slimmed = upto
        for bit in whole_rules:
            running = self.running.get(bit)
            if running is not None and running.lo < self.base + upto:
                del self.running[bit]

    def insert(self, row: Row) -> int:
        """Add a newly arrived row; its absolute position."""
        rows = self.rows
        if not rows:
            rows.append(row)
            return self.base
        last = rows[-1]
        if row[TS] > last[TS] or (row[TS] == last[TS] and row[SEQ] > last[SEQ]):
            rows.append(row)
            return self.base + len(rows) - 1
        position = bisect.bisect_right(rows, (row[TS], row[SEQ]))
        rows.insert(position, row)
        self.slimmed = min(self.slimmed, position)  # slimmed again from there (`slim_older`)
        self.running.clear()  # positions moved under the aggregates: they rebuild when next used
        return self.base + position

    def trim(self, keep_after_ms: int) -> int:
        """Drop rows with ts <= keep_after_ms; how many."""
        if keep_after_ms <= self.floor:
            return 0
        drop = bisect.bisect_right(self.rows, (keep_after_ms, AFTER_ALL))
        if drop:
            del self.rows[:drop]
            self.base += drop
            self.slimmed = max(0, self.slimmed - drop)
        self.floor = keep_after_ms
        return drop


def arrived_in_order(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: r[SEQ])
