"""The micro rules' windows, kept by a warm container across batches, and exact judging from them.

Pure: no I/O. Per batch the pipeline asks `WindowCache.reads` which store reads it needs, runs
them (`TimeSeriesStore.window_rows`) and hands the rows to `WindowCache.evaluate`, which returns
the hits - the same hits `engine.evaluate` finds from whole windows (DESIGN.md semantics).

State, per key field of a windowed rule and per key (`KeyWindow`): the compact rows the rules
need, `(ts_ms, seq, event_id, key, *fields, where_mask)` sorted by (ts, seq); `floor` - every
stored row of the key with `floor < ts_ms` and `seq <= high_water` is held; and each rule's
running aggregate (`WindowAggregate`) over its window. A batch reads:

* keys it does not hold (or held so long ago that a delta would be long): their windows (load);
* keys it holds: only rows stored after their high-water mark (delta: other writers' rows and
  this batch's own); marks are batch ends, so keys sharing one share a read (`DELTA_READS`);
* events whose window reaches below `floor` (late beyond what is held): their windows (late).

Rows are then applied per key in arrival order; each of the batch's events is judged when its
own row arrives, so it sees exactly the rows that arrived no later than it. An event that lands
at the end of its key's rows (the in-order case) slides each rule's aggregate forward; an event
that lands before held rows clears the key's aggregates, which rebuild from its window. An
aggregate only says whether a rule may fire; the hit itself always comes from the kind's `judge`
on the exact window, so values and evidence are those of the whole-window design.

The state holds only rows read from the store, so a batch that fails after its write leaves it as
the store is; `Pipeline` drops the whole state if evaluation itself raises.

Size: the cached state, the reads it asks for and exact judging from it must agree line by
line, so they are kept in one module to be read together.
"""

from __future__ import annotations

import bisect
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.events import MAX_TS_MS, StoredEvent, Transaction, attribute_name, from_epoch_ms
from chalicelib.hits import Hit
from chalicelib.rules.base import Condition, Finding, GraphRule, Rule, WindowAggregate
from chalicelib.rules.engine import make_hit, quarantine
from chalicelib.rules.loader import RuleSet

Row = tuple[Any, ...]

TS, SEQ, EVENT_ID, KEY = 0, 1, 2, 3  # positions in a row; the where-mask is last
_AFTER_ALL = 1 << 62  # larger than any seq

#: Rows are kept this long past the longest window of their key field, so a moderately late event
#: (Kinesis retries, a lagging producer) is still judged from memory.
LATENESS_MARGIN_MS = 15 * 60 * 1000
#: A held key whose high-water mark is more than this many arrivals behind is reloaded rather
#: than read as a delta (a delta read walks arrival order from the oldest mark in the batch).
DELTA_SPAN = 50_000
#: At most this many delta reads per key field and batch.
DELTA_READS = 4
#: The fields of a whole event, for rules that do not say what they read (plugin kinds).
WHOLE_EVENT = ("account_id", "amount", "currency", "merchant_id", "ip", "device_id", "email", "phone",
               "card_id", "lat", "lon", "attributes")
_FAR_FUTURE_MS = MAX_TS_MS + 1
_ANSWERS_KEPT = 4096  # remembered `where` answers per condition


def row_bytes(width: int) -> int:
    """Estimated memory of one held row of `width` values (tuple, ints, strings, a Decimal) and its
    share of the aggregates; calibrated with tracemalloc on the default rules (about 750 bytes
    for the 9-value rows of account_id)."""
    return 128 + 72 * width


@dataclass(frozen=True, slots=True)
class RowRead:
    """One store read: `TimeSeriesStore.window_rows(key_field, keys, start_ms, end_ms, max_seq,
    fields, min_seq=min_seq)`."""

    purpose: str  # "load", "delta" or "late"
    key_field: str
    keys: frozenset[str]
    start_ms: int
    end_ms: int
    max_seq: int
    fields: tuple[str, ...]
    min_seq: int = 0


@dataclass(slots=True)
class _RuleSlot:
    index: int  # position in the ruleset (hit order)
    rule: Rule[Any]
    bit: int
    window_ms: int


@dataclass(slots=True)
class _Layout:
    """What is held for one key field: which fields, for which rules."""

    key_field: str
    fields: tuple[str, ...]  # key field first
    positions: dict[str, int]
    slots: list[_RuleSlot]
    longest_ms: int
    always: int  # mask bits of the rules without `where`
    #: per rule with `where`: its bit and (position, remembered answers, condition) per condition
    filtered: list[tuple[int, list[tuple[int, dict[Any, bool], Condition]]]] = field(default_factory=list)

    def mask(self, row: Row) -> int:
        """Bits of the rules whose `where` the row passes (each condition's answer per value is
        remembered: the same amounts, IPs and flags come back all the time)."""
        mask = self.always
        for bit, conditions in self.filtered:
            for position, answers, condition in conditions:
                value = row[position]
                try:
                    holds = answers[value]
                except KeyError:
                    holds = condition.holds_value(value)
                    if len(answers) < _ANSWERS_KEPT:
                        answers[value] = holds
                except TypeError:  # an unhashable value
                    holds = condition.holds_value(value)
                if not holds:
                    break
            else:
                mask |= bit
        return mask

    def transaction(self, row: Row) -> Transaction:
        values: dict[str, Any] = {"event_id": row[EVENT_ID], "ts": from_epoch_ms(row[TS])}
        attributes: dict[str, Any] = {}
        for name, position in self.positions.items():
            value = row[position]
            attribute = attribute_name(name)
            if attribute:
                if value is not None:
                    attributes.setdefault(attribute, value)
            elif name == "attributes":
                attributes = {**(value or {}), **attributes}
            else:
                values[name] = value
        values["attributes"] = attributes
        return Transaction.model_construct(**values)


def _layouts(ruleset: RuleSet) -> dict[str, _Layout]:
    grouped: dict[str, list[tuple[int, Rule[Any]]]] = defaultdict(list)
    for index, rule in enumerate(ruleset.rules):
        if not isinstance(rule, GraphRule) and rule.window is not None:
            grouped[rule.key_field].append((index, rule))
    layouts = {}
    for key_field, rules in grouped.items():
        names: dict[str, None] = {key_field: None}
        for _, rule in rules:
            read = rule.compact_fields()
            for name in WHOLE_EVENT if read is None else sorted(read):
                names[name] = None
            for condition in rule.config.where:
                names[condition.field] = None
        fields = tuple(names)
        positions = {name: KEY + i for i, name in enumerate(fields)}
        slots = []
        for bit_index, (index, rule) in enumerate(rules):
            assert rule.window is not None
            slots.append(_RuleSlot(index, rule, 1 << bit_index, rule.window.ms))
        always = sum(s.bit for s in slots if not s.rule.config.where)
        filtered: list[tuple[int, list[tuple[int, dict[Any, bool], Condition]]]] = [
            (s.bit, [(positions[c.field], {}, c) for c in s.rule.config.where]) for s in slots if s.rule.config.where]
        layouts[key_field] = _Layout(key_field, fields, positions, slots, max(s.window_ms for s in slots), always,
                                     filtered)
    return layouts


@dataclass(slots=True)
class _Running:
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
    running: dict[int, _Running] = field(default_factory=dict)  # by rule bit

    def insert(self, row: Row) -> int:
        """Add a newly arrived row; its absolute position."""
        rows = self.rows
        if not rows or (row[TS], row[SEQ]) > (rows[-1][TS], rows[-1][SEQ]):
            rows.append(row)
            return self.base + len(rows) - 1
        position = bisect.bisect_right(rows, (row[TS], row[SEQ]))
        rows.insert(position, row)
        self.running.clear()  # positions moved under the aggregates: they rebuild when next used
        return self.base + position

    def trim(self, keep_after_ms: int) -> int:
        """Drop rows with ts <= keep_after_ms; how many."""
        if keep_after_ms <= self.floor:
            return 0
        drop = bisect.bisect_right(self.rows, (keep_after_ms, _AFTER_ALL))
        if drop:
            del self.rows[:drop]
            self.base += drop
        self.floor = keep_after_ms
        return drop


class WindowCache:
    """Window state of the micro rules for one container, bounded to about `max_bytes` (least
    recently used keys are dropped and simply reload). `max_bytes=0` keeps nothing between
    batches: every batch reads whole windows, as a cold container does."""

    def __init__(self, max_bytes: int, *, lateness_margin_ms: int = LATENESS_MARGIN_MS,
                 delta_span: int = DELTA_SPAN, arrival_margin: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.lateness_margin_ms = lateness_margin_ms
        self.delta_span = delta_span
        #: None: the store's arrival is exact (a delta read above a mark is all that is new).
        #: Otherwise delta reads reach this far below each mark, new rows are told apart by event
        #: id, and every event is judged after all its key's rows are in (not as its row arrives).
        self.arrival_margin = arrival_margin
        self._version: str | None = None
        self._layouts: dict[str, _Layout] = {}
        self._keys: OrderedDict[tuple[str, str], KeyWindow] = OrderedDict()
        self._bytes = 0
        self._by_key: dict[str, tuple[Sequence[StoredEvent], dict[str, list[StoredEvent]]]] = {}
        self.stats = {"load_rows": 0, "delta_rows": 0, "late_rows": 0, "evicted_keys": 0, "rebuilds": 0}
        self._ruleset: RuleSet | None = None  # the batch `evaluate` is judging, and where errors count
        self._errors: Counter[str] | None = None

    @property
    def held_rows(self) -> int:
        return sum(len(k.rows) for k in self._keys.values())

    @property
    def held_keys(self) -> int:
        return len(self._keys)

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        self._keys.clear()
        self._bytes = 0

    # ------------------------------------------------------------------- planning (pure)

    def _use(self, ruleset: RuleSet) -> None:
        if ruleset.version != self._version:
            self.clear()
            self._version = ruleset.version
            self._layouts = _layouts(ruleset)

    def _targets(self, layout: _Layout, pending: Sequence[StoredEvent]) -> dict[str, list[StoredEvent]]:
        """The batch's events by key (in arrival order), remembered between `reads` and `evaluate`."""
        remembered = self._by_key.get(layout.key_field)
        if remembered is not None and remembered[0] is pending:
            return remembered[1]
        by_key: dict[str, list[StoredEvent]] = defaultdict(list)
        for stored in pending:
            value = stored.event.get(layout.key_field)
            if value is not None:
                by_key[str(value)].append(stored)
        self._by_key[layout.key_field] = (pending, by_key)
        return by_key

    def reads(self, ruleset: RuleSet, pending: Sequence[StoredEvent]) -> list[RowRead]:
        """The store reads `evaluate` needs for this batch: per key field at most one load, one
        late read and `DELTA_READS` delta reads."""
        self._use(ruleset)
        if not pending:
            return []
        max_seq = max(p.seq for p in pending)
        reads = []
        for key_field, layout in sorted(self._layouts.items()):
            by_key = self._targets(layout, pending)
            load: list[str] = []
            delta: list[str] = []
            late: list[tuple[str, int, int]] = []  # (key, window start, ts)
            for key, targets in by_key.items():
                held = self._keys.get((key_field, key))
                if held is not None and max_seq - held.high_water > self.delta_span:
                    self._drop((key_field, key))
                    held = None
                if held is None:
                    load.append(key)
                    continue
                delta.append(key)
                for target in targets:
                    for slot in layout.slots:
                        start = target.ts_ms - slot.window_ms
                        if start < held.floor:
                            late.append((key, start, target.ts_ms))
            fields = layout.fields
            if load:
                earliest = min(t.ts_ms for k in load for t in by_key[k])
                reads.append(RowRead("load", key_field, frozenset(load),
                                     earliest - layout.longest_ms - self.lateness_margin_ms, _FAR_FUTURE_MS,
                                     max_seq, fields))
            if delta:
                reads.extend(self._delta_reads(key_field, delta, max_seq, fields))
            if late:
                reads.append(RowRead("late", key_field, frozenset(k for k, _, _ in late),
                                     min(s for _, s, _ in late), max(t for _, _, t in late), max_seq, fields))
        return reads

    def _delta_reads(self, key_field: str, keys: list[str], max_seq: int,
                     fields: tuple[str, ...]) -> list[RowRead]:
        """Reads of what arrived after each held key's high-water mark. Marks are batch ends, so
        keys share them: the most recent marks get a read each, older ones share one (it reads
        rows some of its keys hold already; `evaluate` skips those)."""
        by_mark: dict[int, list[str]] = defaultdict(list)
        for key in keys:
            by_mark[self._keys[(key_field, key)].high_water].append(key)
        marks = sorted(by_mark, reverse=True)
        groups = [(mark, by_mark[mark]) for mark in marks[:DELTA_READS - 1]]
        if len(marks) >= DELTA_READS:
            groups.append((marks[-1], [k for mark in marks[DELTA_READS - 1:] for k in by_mark[mark]]))
        margin = self.arrival_margin or 0
        return [RowRead("delta", key_field, frozenset(group),
                        min(self._keys[(key_field, k)].floor for k in group), _FAR_FUTURE_MS,
                        max_seq, fields, max(0, mark - margin)) for mark, group in groups]

    # ------------------------------------------------------------------- evaluation (pure)

    def evaluate(self, ruleset: RuleSet, pending: Sequence[StoredEvent],
                 rows: Mapping[RowRead, list[Row]], *, errors: Counter[str] | None = None) -> list[Hit]:
        """Every hit of the micro rules on `pending`, ordered by arrival then rule order.
        `rows` holds the result of each read `reads` returned for the same batch. A rule that
        raises is quarantined (see `_judge_slot`) and counted in `errors`; the others go on."""
        self._use(ruleset)
        self._ruleset, self._errors = ruleset, errors
        found: list[tuple[int, int, Hit]] = []
        max_seq = max((p.seq for p in pending), default=0)

        def report(rule_index: int, rule: Rule[Any], stored: StoredEvent, finding: Finding | None) -> None:
            if finding is not None:
                found.append((stored.seq, rule_index, make_hit(rule, stored.event, finding, ruleset.version)))

        # rules that need only the event
        for index, rule in enumerate(ruleset.rules):
            if isinstance(rule, GraphRule) or rule.window is not None:
                continue
            for stored in pending:
                if stored.event.get(rule.key_field) is not None and rule.applies_to(stored.event):
                    report(index, rule, stored, self._judge_event(rule, stored.event))

        touched: list[tuple[str, str]] = []
        for key_field, layout in sorted(self._layouts.items()):
            by_key = self._targets(layout, pending)
            if not by_key:
                continue
            loaded: dict[str, list[Row]] = defaultdict(list)
            deltas: dict[str, list[Row]] = defaultdict(list)
            late_rows: dict[str, list[Row]] = defaultdict(list)
            load_floor = 0
            for read, result in rows.items():
                if read.key_field != key_field:
                    continue
                self.stats[f"{read.purpose}_rows"] += len(result)
                if read.purpose == "load":
                    load_floor = read.start_ms
                    self._group(layout, result, loaded)
                elif read.purpose == "late":
                    self._group(layout, result, late_rows)
                else:
                    self._group(layout, result, deltas, fresh_only=True)
            for key, targets in by_key.items():
                name = (key_field, key)
                held = self._keys.get(name)
                if held is None:
                    held, arriving = self._start(layout, loaded.get(key, []), targets, load_floor)
                    self._keys[name] = held
                else:
                    arriving = deltas.get(key, [])
                    self._keys.move_to_end(name)
                touched.append(name)
                self._judge_key(layout, held, max_seq, targets, arriving, late_rows.get(key, []), report)
        self._settle(touched)
        found.sort(key=lambda item: (item[0], item[1]))
        return [hit for _, _, hit in found if hit.rule_id not in ruleset.quarantined]

    def _group(self, layout: _Layout, rows: Iterable[Row], into: dict[str, list[Row]], *,
               fresh_only: bool = False) -> None:
        """Rows by key, each with its where-mask appended; `fresh_only`: only rows a held key
        does not hold yet (a delta read may return rows some of its keys already hold)."""
        key_field = layout.key_field
        held_ids: dict[str, set[str]] = {}  # by key, for stores whose arrival is not exact
        for row in rows:
            key = str(row[KEY])
            if fresh_only:
                held = self._keys.get((key_field, key))
                if held is None or row[TS] <= held.floor:
                    continue
                if self.arrival_margin is None:
                    if row[SEQ] <= held.high_water:
                        continue
                else:
                    ids = held_ids.get(key)
                    if ids is None:
                        ids = held_ids[key] = {r[EVENT_ID] for r in held.rows}
                    if row[EVENT_ID] in ids:
                        continue
                    ids.add(row[EVENT_ID])
            into[key].append((*row, layout.mask(row)))

    @staticmethod
    def _start(layout: _Layout, rows: list[Row], targets: list[StoredEvent], floor: int) -> tuple[KeyWindow, list[Row]]:
        """A key's state from its loaded window: rows that arrived before its first pending event
        are held at once; the rest arrive one by one (their order matters for judging)."""
        first = min(t.seq for t in targets)
        held = sorted(r for r in rows if r[SEQ] < first)
        return KeyWindow(held, floor, first - 1), [r for r in rows if r[SEQ] >= first]

    def _judge_key(self, layout: _Layout, held: KeyWindow, max_seq: int, targets: list[StoredEvent],
                   arriving: list[Row], late_rows: list[Row],
                   report: Callable[[int, Rule[Any], StoredEvent, Finding | None], None]) -> None:
        if self.arrival_margin is not None:
            # arrival is not exact: a row may land below the mark, so every row goes in first and
            # each event is judged over the rows that arrived no later than it
            for row in arriving:
                held.insert(row)
            for target in targets:
                self._judge_again(layout, held, target, late_rows, report)
            held.high_water = max([held.high_water, max_seq, *(row[SEQ] for row in arriving)])
            return
        waiting = {t.seq: t for t in targets}
        # events judged before (a redelivery): their window is what arrived no later than them
        for again in [t for t in targets if t.seq <= held.high_water]:
            del waiting[again.seq]
            self._judge_again(layout, held, again, late_rows, report)
        for row in arrived_in_order(arriving):
            position = held.insert(row)
            held.high_water = row[SEQ]
            arrived = waiting.pop(row[SEQ], None)
            if arrived is not None:
                self._judge_arrival(layout, held, arrived, row, position, late_rows, report)
        for target in waiting.values():  # below the held range: judged from the store
            self._judge_again(layout, held, target, late_rows, report)
        # the reads covered every arrival of this key up to the batch's last event
        held.high_water = max(held.high_water, max_seq)

    def _judge_arrival(self, layout: _Layout, held: KeyWindow, target: StoredEvent, row: Row, position: int,
                       late_rows: list[Row],
                       report: Callable[[int, Rule[Any], StoredEvent, Finding | None], None]) -> None:
        """Judge an event as its row arrives: every held row arrived no later than it."""
        mask = row[-1]
        for slot in layout.slots:
            if mask & slot.bit:
                report(slot.index, slot.rule, target, self._judge_slot(layout, slot, held, target, late_rows,
                                                                       row, position))

    def _judge_again(self, layout: _Layout, held: KeyWindow, target: StoredEvent, late_rows: list[Row],
                     report: Callable[[int, Rule[Any], StoredEvent, Finding | None], None]) -> None:
        """Judge an event whose row is not the newest (a redelivery, or below the held range)."""
        for slot in layout.slots:
            if slot.rule.applies_to(target.event):
                report(slot.index, slot.rule, target, self._judge_slot(layout, slot, held, target, late_rows))

    def _judge_slot(self, layout: _Layout, slot: _RuleSlot, held: KeyWindow, target: StoredEvent,
                    late_rows: list[Row], row: Row | None = None, position: int = -1) -> Finding | None:
        """One windowed rule on one event: THE per-rule boundary. Every call into a windowed rule
        (its aggregate and its `judge`) happens below this method, and every call into a rule
        without a window in `_judge_event`: a rule that raises is quarantined for the rest of its
        ruleset version (logged, counted) and judged no more; the other rules go on."""
        assert self._ruleset is not None
        if slot.rule.id in self._ruleset.quarantined:
            return None
        try:
            return self._judge_slot_window(layout, slot, held, target, late_rows, row, position)
        except Exception as exc:
            quarantine(self._ruleset, slot.rule, exc, self._errors)
            return None

    def _judge_slot_window(self, layout: _Layout, slot: _RuleSlot, held: KeyWindow, target: StoredEvent,
                           late_rows: list[Row], row: Row | None, position: int) -> Finding | None:
        start = target.ts_ms - slot.window_ms
        if start < held.floor:
            return self._judge_late(layout, slot, target, late_rows)
        if row is not None:
            return self._judge_held(layout, slot, held, target, row, position, start)
        # not the newest row: its window is what arrived no later than it
        lo = bisect.bisect_right(held.rows, (start, _AFTER_ALL))
        hi = bisect.bisect_right(held.rows, (target.ts_ms, _AFTER_ALL))
        window = [r for r in held.rows[lo:hi] if r[SEQ] <= target.seq and r[-1] & slot.bit]
        return self._judge_rows(layout, slot.rule, target, window)

    def _judge_held(self, layout: _Layout, slot: _RuleSlot, held: KeyWindow, target: StoredEvent, row: Row,
                    position: int, start: int) -> Finding | None:
        running = held.running.get(slot.bit)
        if running is None or running.lo < held.base or running.hi > position + 1:
            aggregate = slot.rule.running_aggregate(layout.positions)
            if aggregate is None:  # a kind without an aggregate: judged from its window
                return self._judge_rows(layout, slot.rule, target, self._window(held, slot, start, position))
            self.stats["rebuilds"] += 1
            lo = held.base + bisect.bisect_right(held.rows, (start, _AFTER_ALL))
            running = held.running[slot.bit] = _Running(aggregate, lo, lo)
        rows, base, bit, aggregate = held.rows, held.base, slot.bit, running.aggregate
        for absolute in range(running.hi, position + 1):
            entering = rows[absolute - base]
            if entering[-1] & bit:
                aggregate.add(entering)
        running.hi = position + 1
        lo = running.lo
        while lo < running.hi and rows[lo - base][TS] <= start:
            leaving = rows[lo - base]
            if leaving[-1] & bit:
                aggregate.remove(leaving)
            lo += 1
        running.lo = lo
        if not aggregate.may_fire(row, start):
            return None
        return self._judge_rows(layout, slot.rule, target, self._window(held, slot, start, position))

    @staticmethod
    def _window(held: KeyWindow, slot: _RuleSlot, start: int, position: int) -> list[Row]:
        end = position + 1 - held.base
        lo = bisect.bisect_right(held.rows, (start, _AFTER_ALL), 0, end)
        return [r for r in held.rows[lo:end] if r[-1] & slot.bit]

    def _judge_late(self, layout: _Layout, slot: _RuleSlot, target: StoredEvent, rows: list[Row]) -> Finding | None:
        start = target.ts_ms - slot.window_ms
        window = sorted(r for r in rows if start < r[TS] <= target.ts_ms and r[SEQ] <= target.seq
                        and r[-1] & slot.bit)
        return self._judge_rows(layout, slot.rule, target, window)

    @staticmethod
    def _judge_rows(layout: _Layout, rule: Rule[Any], target: StoredEvent, window: list[Row]) -> Finding | None:
        return rule.judge(target.event, [layout.transaction(r) for r in window])

    def _judge_event(self, rule: Rule[Any], event: Transaction) -> Finding | None:
        assert self._ruleset is not None
        if rule.id in self._ruleset.quarantined:
            return None
        try:
            return rule.judge(event, (event,))
        except Exception as exc:
            quarantine(self._ruleset, rule, exc, self._errors)
            return None

    # ------------------------------------------------------------------- bounds

    def _settle(self, touched: list[tuple[str, str]]) -> None:
        """Drop rows older than every window (plus the lateness margin), then the least recently
        used keys while over the memory bound."""
        for name in touched:
            held = self._keys.get(name)
            if held is None:
                continue
            if held.rows:
                held.trim(held.rows[-1][TS] - self._layouts[name[0]].longest_ms - self.lateness_margin_ms)
            size = len(held.rows) * row_bytes(len(held.rows[0])) if held.rows else 0
            self._bytes += size - held.bytes
            held.bytes = size
        while self._keys and self._bytes > self.max_bytes:
            _, dropped = self._keys.popitem(last=False)
            self._bytes -= dropped.bytes
            self.stats["evicted_keys"] += 1

    def _drop(self, name: tuple[str, str]) -> None:
        self._bytes -= self._keys.pop(name).bytes


def arrived_in_order(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: r[SEQ])
