"""The micro rules' windows, kept by a warm container across batches, and exact judging from them.

Pure: no I/O. Per batch the pipeline asks `WindowCache.reads` which store reads it needs, runs
them (`TimeSeriesStore.window_rows`) and hands the rows to `WindowCache.evaluate`, which returns
the hits - the same hits `engine.evaluate` finds from whole windows (DESIGN.md semantics).

State, per key field of a windowed rule and per key (`KeyWindow`): the compact rows the rules
need, `(ts_ms, seq, event_id, key, *fields, where_mask)` sorted by (ts, seq), those older than
every window but the longest slim (only the longest window's fields, `window_rows`); `floor` - every
stored row of the key with `floor < ts_ms` and `seq <= high_water` is held; and each rule's
running aggregate (`WindowAggregate`) over its window. A batch reads:

* keys it does not hold (or held so long ago that a delta would be long): their windows (load);
* keys it holds: only rows stored after their high-water mark (delta: other writers' rows and
  this batch's own); marks are batch ends, so keys sharing one share a read (`DELTA_READS`).
  Where arrival is exact and the batch's events are exactly the arrivals after the last batch
  this cache judged (their seqs follow on, with no gap: nobody else wrote), a key whose mark is at
  or above the start of that unbroken run has no rows but the batch's own to read: its new rows
  are taken from the batch's events as the store kept them (`_own_rows`), with no read;
* events whose window reaches below `floor` (late beyond what is held): their windows (late).

Rows are then applied per key in arrival order; each of the batch's events is judged when its
own row arrives, so it sees exactly the rows that arrived no later than it. An event that lands
at the end of its key's rows (the in-order case) slides each rule's aggregate forward; an event
that lands before held rows clears the key's aggregates, which rebuild from its window. An
aggregate only says whether a rule may fire; the hit itself always comes from the kind on the
exact window (its `judge_rows` on the rows, or `judge` on events rebuilt from them), so values and
evidence are those of the whole-window design.

The state holds only rows the store holds (read from it, or the batch's own events as the store
kept them, seq included), so a batch that fails after its write leaves it as the store is;
`Pipeline` drops the whole state if evaluation itself raises.

Modules: this one plans the reads and bounds the memory (`WindowCache`); `window_rows` is the row
layout (which fields, where, the where-mask), `window_state` the per-key state (`KeyWindow`), and
`window_judging` judges a batch from them: kinds judge the compact rows (`Rule.judge_rows`).
"""

from __future__ import annotations

from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter

from chalicelib.events import MAX_TS_MS, StoredEvent
from chalicelib.hits import Hit
from chalicelib.rules.loader import RuleSet
from chalicelib.rules.window_judging import BatchJudge
from chalicelib.rules.window_rows import EVENT_ID, KEY, SEQ, TS, Row, RowLayout, layouts_of, row_bytes
from chalicelib.rules.window_state import KeyWindow

__all__ = ["DELTA_READS", "DELTA_SPAN", "LATENESS_MARGIN_MS", "RowRead", "WindowCache", "row_bytes"]

#: Rows are kept this long past the longest window of their key field, so a moderately late event
#: (Kinesis retries, a lagging producer) is still judged from memory.
LATENESS_MARGIN_MS = 15 * 60 * 1000
#: A held key whose high-water mark is more than this many arrivals behind is reloaded rather
#: than read as a delta (a delta read walks arrival order from the oldest mark in the batch).
DELTA_SPAN = 50_000
#: At most this many delta reads per key field and batch.
DELTA_READS = 4
_FAR_FUTURE_MS = MAX_TS_MS + 1
#: Fields a row of the batch's own events gives exactly as the SQLite-style store reads them back
#: (`Transaction.get` and the store's column agree): layouts reading only these may skip delta reads.
OWN_ROW_FIELDS = frozenset({"event_id", "account_id", "amount", "currency", "merchant_id", "ip", "device_id",
                            "email", "phone", "card_id", "lat", "lon"})


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
        self._layouts: dict[str, RowLayout] = {}
        self._keys: OrderedDict[tuple[str, str], KeyWindow] = OrderedDict()
        self._bytes = 0
        self._by_key: dict[str, tuple[Sequence[StoredEvent], dict[str, list[StoredEvent]]]] = {}
        self.stats = {"load_rows": 0, "delta_rows": 0, "late_rows": 0, "evicted_keys": 0, "rebuilds": 0,
                      "own_rows": 0}
        #: exact arrival only: every stored row with seq in (_run_from, _run_to] was a pending event
        #: of a batch this cache judged (None: unknown)
        self._run_from: int | None = None
        self._run_to: int | None = None

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
        self._run_from = self._run_to = None

    def _own_mark(self, pending: Sequence[StoredEvent]) -> int | None:
        """When the batch's events are exactly the arrivals right after the last judged batch's
        (exact arrival; their seqs follow on without a gap, so no other writer stored anything
        in between): the mark at or above which a held key's new rows are only the batch's own
        (every arrival since that mark was an event this cache judged, and judging a key's event
        raises its mark). None otherwise: held keys read their deltas."""
        if self.arrival_margin is not None or self._run_to is None or not pending:
            return None
        seqs = [p.seq for p in pending]
        low, high = min(seqs), max(seqs)
        if low != self._run_to + 1 or high - low + 1 != len(seqs):
            return None
        return self._run_from

    @staticmethod
    def _own_rows_mark(layout: RowLayout, mark: int | None) -> int | None:
        """`mark` (`_own_mark`) for a layout whose rows the batch's events give as the store would."""
        return mark if mark is not None and OWN_ROW_FIELDS.issuperset(layout.fields) else None

    # ------------------------------------------------------------------- planning (pure)

    def _use(self, ruleset: RuleSet) -> None:
        if ruleset.version != self._version:
            self.clear()
            self._version = ruleset.version
            self._layouts = layouts_of(ruleset)

    def _targets(self, layout: RowLayout, pending: Sequence[StoredEvent]) -> dict[str, list[StoredEvent]]:
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
        mark = self._own_mark(pending)
        reads = []
        for key_field, layout in sorted(self._layouts.items()):
            by_key = self._targets(layout, pending)
            own = self._own_rows_mark(layout, mark)
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
                if own is None or held.high_water < own:
                    delta.append(key)
                whole_floor = max(held.floor, held.full_floor)
                for target in targets:
                    for slot in layout.slots:
                        start = target.ts_ms - slot.window_ms
                        if start < (whole_floor if slot.whole_rows else held.floor):
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
                 rows: Mapping[RowRead, list[Row]], *, errors: Counter[str] | None = None,
                 observed_since: int | None = None) -> list[Hit]:
        """Every hit of the micro rules on `pending`, ordered by arrival then rule order.
        `rows` holds the result of each read `reads` returned for the same batch. A rule that
        raises is quarantined (see `window_judging`) and counted in `errors`; the others go on.
        `observed_since`: the store's observation start (`TimeSeriesStore.observed_since`, read
        after the batch was written); rules that `needs_full_history` are silent until it covers
        their window (None: they are silent)."""
        self._use(ruleset)
        judge = BatchJudge(ruleset, errors, self.stats, self.arrival_margin, observed_since)
        max_seq = max((p.seq for p in pending), default=0)
        mark = self._own_mark(pending)
        judge.judge_events(pending)
        touched: list[tuple[str, str]] = []
        for key_field, layout in sorted(self._layouts.items()):
            by_key = self._targets(layout, pending)
            if not by_key:
                continue
            own = self._own_rows_mark(layout, mark)
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
            if own is not None:
                self._group_own(layout, by_key, own, deltas)
            keys = self._keys
            for key, targets in by_key.items():
                name = (key_field, key)
                held = keys.get(name)
                if held is None:
                    held, arriving = self._start(loaded.get(key, []), targets, load_floor)
                    keys[name] = held
                else:
                    arriving = deltas.get(key, [])
                    keys.move_to_end(name)
                touched.append(name)
                judge.judge_key(layout, held, max_seq, targets, arriving, late_rows.get(key, []))
        self._settle(touched)
        if pending and self.arrival_margin is None:
            if mark is None:  # a new run starts after this batch (its reads covered every held key)
                self._run_from = max_seq
            self._run_to = max_seq
        return judge.hits()

    def _group_own(self, layout: RowLayout, by_key: Mapping[str, list[StoredEvent]], mark: int,
                   into: dict[str, list[Row]]) -> None:
        """The new rows of each held key with no other arrivals since its mark (`_own_mark`):
        its events of this batch, as `_group` would have them from a delta read."""
        # `Transaction.get` of a plain field (OWN_ROW_FIELDS) is the attribute: read them all at once
        values = attrgetter(*layout.fields)
        single = len(layout.fields) == 1
        key_field, held_row = layout.key_field, layout.held_row
        count = 0
        for key, targets in by_key.items():
            held = self._keys.get((key_field, key))
            if held is None or held.high_water < mark:
                continue
            rows = into[key]
            for stored in targets:
                if stored.ts_ms > held.floor and stored.seq > held.high_water:
                    event = stored.event
                    read = values(event)
                    rows.append(held_row((stored.ts_ms, stored.seq, event.event_id,
                                          *((read,) if single else read))))
                    count += 1
        self.stats["own_rows"] += count

    def _group(self, layout: RowLayout, rows: Iterable[Row], into: dict[str, list[Row]], *,
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
            into[key].append(layout.held_row(row))

    @staticmethod
    def _start(rows: list[Row], targets: list[StoredEvent], floor: int) -> tuple[KeyWindow, list[Row]]:
        """A key's state from its loaded window: rows that arrived before its first pending event
        are held at once; the rest arrive one by one (their order matters for judging)."""
        first = min(t.seq for t in targets)
        held = sorted(r for r in rows if r[SEQ] < first)
        return KeyWindow(held, floor, first - 1), [r for r in rows if r[SEQ] >= first]

    # ------------------------------------------------------------------- bounds

    def _settle(self, touched: list[tuple[str, str]]) -> None:
        """Drop rows older than every window (plus the lateness margin), then the least recently
        used keys while over the memory bound."""
        for name in touched:
            held = self._keys.get(name)
            if held is None:
                continue
            layout = self._layouts[name[0]]
            if held.rows:
                newest = held.rows[-1][TS]
                held.trim(newest - layout.longest_ms - self.lateness_margin_ms)
                if layout.short_ms:
                    held.slim_older(newest - layout.short_ms - self.lateness_margin_ms, layout.slim,
                                    [slot.bit for slot in layout.slots if slot.whole_rows])
            size = layout.bytes_of(len(held.rows), held.slimmed)
            self._bytes += size - held.bytes
            held.bytes = size
        while self._keys and self._bytes > self.max_bytes:
            _, dropped = self._keys.popitem(last=False)
            self._bytes -= dropped.bytes
            self.stats["evicted_keys"] += 1

    def _drop(self, name: tuple[str, str]) -> None:
        self._bytes -= self._keys.pop(name).bytes

