"""Judging one batch from the window cache's rows (the third of the three jobs of
`rules/windows.py`; see there): each event is judged when its own row arrives at its key, over the
rows that arrived no later than it, by each rule's running aggregate and then - only when the
aggregate says it may fire - by the kind's `judge_rows` on the exact window. A rule whose kind
`needs_full_history` is judged only once the store's observation covers its window
(`observed_since <= event.ts - window`, DESIGN.md Rule semantics): one comparison per event and rule."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from typing import Any

from chalicelib.events import MAX_TS_MS, StoredEvent, Transaction
from chalicelib.hits import Hit
from chalicelib.rules.base import Finding, GraphRule, Rule
from chalicelib.rules.engine import HitParts, make_hit, quarantine
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.window_rows import SEQ, TS, Row, RowLayout, RuleSlot
from chalicelib.rules.window_state import AFTER_ALL, KeyWindow, Running, arrived_in_order

#: `observed_since` when the store has observed nothing: later than any event's window start.
WARMING_UP_FOREVER = MAX_TS_MS + 1


class BatchJudge:
    """The hits of one batch, as `WindowCache.evaluate` applies its rows key by key. A rule that
    raises is quarantined for the rest of its ruleset version (logged, counted in `errors`) and
    judged no more; the other rules go on."""

    def __init__(self, ruleset: RuleSet, errors: Counter[str] | None, stats: dict[str, int],
                 arrival_margin: int | None, observed_since: int | None = None) -> None:
        self.ruleset = ruleset
        self.errors = errors
        self.stats = stats
        self.arrival_margin = arrival_margin
        #: the store's observation start (ms); None: nothing observed, every such rule warms up
        self.observed_since = WARMING_UP_FOREVER if observed_since is None else observed_since
        self.found: list[tuple[int, int, Hit]] = []  # (seq, rule index, hit)
        self._hit_parts: dict[int, HitParts] = {}  # by rule index

    def hits(self) -> list[Hit]:
        """Every hit found, ordered by arrival then rule order."""
        self.found.sort(key=lambda item: (item[0], item[1]))
        quarantined = self.ruleset.quarantined
        return [hit for _, _, hit in self.found if hit.rule_id not in quarantined]

    def _report(self, rule_index: int, rule: Rule[Any], stored: StoredEvent, finding: Finding | None) -> None:
        if finding is not None:
            parts = self._hit_parts.get(rule_index)
            if parts is None:
                parts = self._hit_parts[rule_index] = HitParts.of(rule)
            self.found.append((stored.seq, rule_index, make_hit(rule, stored.event, finding, self.ruleset.version,
                                                                parts)))

    # ------------------------------------------------------------------- rules without a window

    def judge_events(self, pending: Iterable[StoredEvent]) -> None:
        """The rules that need only the event."""
        for index, rule in enumerate(self.ruleset.rules):
            if isinstance(rule, GraphRule) or rule.window is not None:
                continue
            for stored in pending:
                if stored.event.get(rule.key_field) is not None and rule.applies_to(stored.event):
                    self._report(index, rule, stored, self._judge_event(rule, stored.event))

    def _judge_event(self, rule: Rule[Any], event: Transaction) -> Finding | None:
        """Every call into a rule without a window happens here (see `_judge_slot`)."""
        if rule.id in self.ruleset.quarantined:
            return None
        try:
            return rule.judge(event, (event,))
        except Exception as exc:
            quarantine(self.ruleset, rule, exc, self.errors)
            return None

    # ------------------------------------------------------------------- one key

    def judge_key(self, layout: RowLayout, held: KeyWindow, max_seq: int, targets: list[StoredEvent],
                  arriving: list[Row], late_rows: list[Row]) -> None:
        """Apply a key's arriving rows in arrival order, judging each of its batch events."""
        if self.arrival_margin is not None:
            # arrival is not exact: a row may land below the mark, so every row goes in first and
            # each event is judged over the rows that arrived no later than it
            for row in arriving:
                held.insert(row)
            for target in targets:
                self._judge_again(layout, held, target, late_rows)
            held.high_water = max([held.high_water, max_seq, *(row[SEQ] for row in arriving)])
            return
        if len(targets) == 1 and len(arriving) == 1 and arriving[0][SEQ] == targets[0].seq \
                and targets[0].seq > held.high_water:
            # the common case: the key's one event of the batch, and nothing else arrived
            row = arriving[0]
            position = held.insert(row)
            self._judge_arrival(layout, held, targets[0], row, position, late_rows)
            held.high_water = max(row[SEQ], max_seq)
            return
        waiting = {t.seq: t for t in targets}
        # events judged before (a redelivery): their window is what arrived no later than them
        for again in [t for t in targets if t.seq <= held.high_water]:
            del waiting[again.seq]
            self._judge_again(layout, held, again, late_rows)
        for row in arrived_in_order(arriving):
            position = held.insert(row)
            held.high_water = row[SEQ]
            arrived = waiting.pop(row[SEQ], None)
            if arrived is not None:
                self._judge_arrival(layout, held, arrived, row, position, late_rows)
        for target in waiting.values():  # below the held range: judged from the store
            self._judge_again(layout, held, target, late_rows)
        # the reads covered every arrival of this key up to the batch's last event
        held.high_water = max(held.high_water, max_seq)

    def _judge_arrival(self, layout: RowLayout, held: KeyWindow, target: StoredEvent, row: Row, position: int,
                       late_rows: list[Row]) -> None:
        """Judge an event as its row arrives: every held row arrived no later than it. One pass
        over the key's rules with the per-rule work inline (the hot loop: one call per arrival,
        not a chain of calls per rule). A rule that raises is quarantined, the others go on."""
        mask = row[-1]
        quarantined = self.ruleset.quarantined
        ts_ms = target.ts_ms
        floor, full_floor = held.floor, held.full_floor
        observed_since = self.observed_since
        rows, base, running_of = held.rows, held.base, held.running
        end = position + 1
        for slot in layout.slots:
            bit = slot.bit
            if not mask & bit or slot.rule_id in quarantined:
                continue
            try:
                start = ts_ms - slot.window_ms
                if slot.needs_history and start < observed_since:
                    continue  # warming up: the store has not watched this event's whole window
                if start < floor or (slot.whole_rows and start < full_floor):
                    finding = self._judge_late(layout, slot, target, late_rows)
                else:
                    running = running_of.get(bit)
                    if running is None or running.lo < base or running.hi > end:
                        fresh = slot.aggregate()
                        if fresh is None:  # a kind without an aggregate: judged from its window
                            finding = slot.judge_rows(target.event, _window(held, bit, start, position),
                                                      layout.positions)
                            if finding is not None:
                                self._report(slot.index, slot.rule, target, finding)
                            continue
                        self.stats["rebuilds"] += 1
                        lo = base + bisect.bisect_right(rows, (start, AFTER_ALL))
                        running = running_of[bit] = Running(fresh, lo, lo)
                    aggregate = running.aggregate
                    hi = running.hi
                    if hi < end:
                        add = aggregate.add
                        for entering in rows[hi - base:end - base]:
                            if entering[-1] & bit:
                                add(entering)
                        running.hi = end
                    lo = running.lo
                    if lo < end and rows[lo - base][TS] <= start:
                        remove = aggregate.remove
                        while lo < end and (leaving := rows[lo - base])[TS] <= start:
                            if leaving[-1] & bit:
                                remove(leaving)
                            lo += 1
                        running.lo = lo
                    if not aggregate.may_fire(row, start):
                        continue
                    finding = slot.judge_rows(target.event, _window(held, bit, start, position), layout.positions)
            except Exception as exc:
                quarantine(self.ruleset, slot.rule, exc, self.errors)
                continue
            if finding is not None:
                self._report(slot.index, slot.rule, target, finding)

    def _judge_again(self, layout: RowLayout, held: KeyWindow, target: StoredEvent, late_rows: list[Row]) -> None:
        """Judge an event whose row is not the newest (a redelivery, or below the held range)."""
        for slot in layout.slots:
            if slot.rule.applies_to(target.event):
                self._report(slot.index, slot.rule, target, self._judge_slot(layout, slot, held, target, late_rows))

    # ------------------------------------------------------------------- one rule on one event

    def _judge_slot(self, layout: RowLayout, slot: RuleSlot, held: KeyWindow, target: StoredEvent,
                    late_rows: list[Row]) -> Finding | None:
        """One windowed rule on an event whose row is not the newest. Every call into a windowed
        rule (its aggregate and its `judge_rows`) happens here or in `_judge_arrival`, and every
        call into a rule without a window in `_judge_event`: the quarantine boundaries."""
        if slot.rule_id in self.ruleset.quarantined:
            return None
        start = target.ts_ms - slot.window_ms
        if slot.needs_history and start < self.observed_since:
            return None  # warming up: the store has not watched this event's whole window
        try:
            if start < held.floor or (slot.whole_rows and start < held.full_floor):
                return self._judge_late(layout, slot, target, late_rows)
            # not the newest row: its window is what arrived no later than it
            lo = bisect.bisect_right(held.rows, (start, AFTER_ALL))
            hi = bisect.bisect_right(held.rows, (target.ts_ms, AFTER_ALL))
            window = [r for r in held.rows[lo:hi] if r[SEQ] <= target.seq and r[-1] & slot.bit]
            return slot.judge_rows(target.event, window, layout.positions)
        except Exception as exc:
            quarantine(self.ruleset, slot.rule, exc, self.errors)
            return None

    def _judge_late(self, layout: RowLayout, slot: RuleSlot, target: StoredEvent, rows: list[Row]) -> Finding | None:
        start = target.ts_ms - slot.window_ms
        window = sorted(r for r in rows if start < r[TS] <= target.ts_ms and r[SEQ] <= target.seq
                        and r[-1] & slot.bit)
        return slot.judge_rows(target.event, window, layout.positions)


def _window(held: KeyWindow, bit: int, start: int, position: int) -> list[Row]:
    end = position + 1 - held.base
    lo = bisect.bisect_right(held.rows, (start, AFTER_ALL), 0, end)
    return [r for r in held.rows[lo:end] if r[-1] & bit]
