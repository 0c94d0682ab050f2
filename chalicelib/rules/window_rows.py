"""The row layout of the window cache: which fields its compact rows hold per key field, where,
and for which rules (the first of the three jobs of `rules/windows.py`; see there).

A held row is a store row (`events.WindowRow`: `(ts_ms, seq, event_id, key, *fields)`, the key
field first among the fields) with one more value appended: its where-mask, the bits of the
rules whose `where` it passes.

Slim rows (issue 20, "window memory that fits a month"): the fields the rules of the layout's
longest window read come right after the key, so a row older than every shorter window (plus the
lateness margin) can be cut to `(ts_ms, seq, event_id, key, *those fields, where_mask)`
(`RowLayout.slim`): a month of `first_seen` rows holds the times, the event id and the device, not
the amounts and places the 7-day and shorter rules read. Only the longest window's rules ever read
a slim row; a shorter rule whose window reaches below a key's slim boundary (a late event) is
judged from the store (`KeyWindow.full_floor`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.events import ROW_EVENT_ID, ROW_SEQ, ROW_TS, ROW_VALUES, Transaction, WindowRow, row_positions
from chalicelib.rules.base import Condition, Finding, GraphRule, Rule, WindowAggregate
from chalicelib.rules.loader import RuleSet

Row = WindowRow

TS, SEQ, EVENT_ID, KEY = ROW_TS, ROW_SEQ, ROW_EVENT_ID, ROW_VALUES  # positions in a row; the mask is last

#: The fields of a whole event, for rules that do not say what they read (plugin kinds).
WHOLE_EVENT = ("account_id", "amount", "currency", "merchant_id", "ip", "device_id", "email", "phone",
               "card_id", "lat", "lon", "attributes")
_ANSWERS_KEPT = 4096  # remembered `where` answers per condition
_SHARED_TEXT_KEPT = 1 << 17  # distinct strings shared between held rows, per key field
#: Values that are never text or are unique per row: not worth sharing.
_NOT_SHARED = frozenset({"amount", "lat", "lon", "attributes"})


def row_bytes(width: int) -> int:
    """A rough estimate of one held row of `width` values, for sizing caches in rows (the cache
    itself estimates each layout's rows from what they hold: `RowLayout.full_bytes`)."""
    return 128 + 72 * width


#: Estimated memory of a held row's fixed part, calibrated with tracemalloc on the default rules
#: (CPython 3.11): the tuple header, the list slot, the ts and seq ints, the event id (a unique
#: string of ~15 characters) and the where-mask.
ROW_HEAD_BYTES = 176
#: per value in a held row: the tuple's slot (text is shared between rows, `held_row`)
VALUE_SLOT_BYTES = 8
#: the value itself, for values that are not shared text: a Decimal amount, floats, a mapping
VALUE_BYTES = {"amount": 112, "lat": 24, "lon": 24, "attributes": 240}
#: per held key: its `KeyWindow`, list and entry in the LRU; and per rule of its layout: the
#: running aggregate (`Running` and the kind's sums, counts or recent rows)
KEY_BYTES = 768
RULE_STATE_BYTES = 256


def layout_row_bytes(fields: Sequence[str]) -> int:
    """Estimated memory of one held row holding `fields` (and the fixed head and the mask)."""
    return ROW_HEAD_BYTES + VALUE_SLOT_BYTES * (len(fields) + 4) + sum(VALUE_BYTES.get(f, 0) for f in fields)


RowJudge = Callable[[Transaction, Sequence[WindowRow], Mapping[str, int]], Finding | None]


@dataclass(slots=True)
class RuleSlot:
    """One windowed rule of a layout."""

    index: int  # position in the ruleset (hit order)
    rule: Rule[Any]
    rule_id: str
    bit: int
    window_ms: int
    judge_rows: RowJudge  # the rule's row judge (`Rule.rows_judge`)
    aggregate: Callable[[], WindowAggregate | None]  # a fresh running aggregate, or None
    #: False for the rules of the layout's longest window when its old rows are slimmed
    #: (`RowLayout.slim`): they read slim rows; the others never do
    whole_rows: bool = True
    needs_history: bool = False  # `Rule.needs_full_history`: judged only once observation covers the window


@dataclass(slots=True)
class RowLayout:
    """What is held for one key field: which fields, for which rules."""

    key_field: str
    fields: tuple[str, ...]  # key field first
    positions: dict[str, int]
    slots: list[RuleSlot]
    longest_ms: int
    always: int  # mask bits of the rules without `where`
    #: per rule with `where`: its bit and (position, remembered answers, condition) per condition
    filtered: list[tuple[int, list[tuple[int, dict[Any, bool], Condition]]]] = field(default_factory=list)
    #: positions of values that may be text: held rows share one string per distinct value
    text_positions: tuple[int, ...] = ()
    shared_text: dict[str, str] = field(default_factory=dict)
    #: rows older than this (plus the lateness margin) behind a key's newest row are read only by
    #: the rules of the longest window: they keep the first `slim_width` values and the mask
    #: (0: rows are never slimmed)
    short_ms: int = 0
    slim_width: int = 0
    full_bytes: int = 0  # estimated memory of a whole held row
    slim_bytes: int = 0  # and of a slim one

    def slim(self, row: Row) -> Row:
        """The row with only what the longest window's rules read: the fixed head, the key, their
        fields, the where-mask (the same for a row that is slim already)."""
        return row[:self.slim_width] + row[-1:]

    def bytes_of(self, rows: int, slimmed: int) -> int:
        """Estimated memory of a key holding `rows` rows of which `slimmed` are slim."""
        return (KEY_BYTES + RULE_STATE_BYTES * len(self.slots) + slimmed * self.slim_bytes
                + (rows - slimmed) * self.full_bytes)

    def held_row(self, row: Row) -> Row:
        """The row as the cache holds it: repeated text shared with earlier rows (an account's id,
        its usual IP and device appear in every row of its window), the where-mask appended."""
        values = list(row)
        shared = self.shared_text
        if len(shared) > _SHARED_TEXT_KEPT:
            shared.clear()  # only sharing is lost: the rows already held keep their strings
        for position in self.text_positions:
            value = values[position]
            if value.__class__ is str:
                values[position] = shared.setdefault(value, value)
        values.append(self.mask(row))
        return tuple(values)

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


def layouts_of(ruleset: RuleSet) -> dict[str, RowLayout]:
    """The layout of each key field of the ruleset's windowed rules."""
    grouped: dict[str, list[tuple[int, Rule[Any]]]] = defaultdict(list)
    for index, rule in enumerate(ruleset.rules):
        if not isinstance(rule, GraphRule) and rule.window is not None:
            grouped[rule.key_field].append((index, rule))
    layouts = {}
    for key_field, rules in grouped.items():
        longest = max(rule.window.ms for _, rule in rules if rule.window is not None)
        slimming = _slimmable(rules, longest)
        names: dict[str, None] = {key_field: None}
        if slimming:  # the longest window's fields first: a slim row is a prefix of a whole one
            for _, rule in rules:
                if rule.window is not None and rule.window.ms == longest:
                    names.update(dict.fromkeys(sorted(rule.compact_fields() or ())))
        slim_width = KEY + len(names)
        for _, rule in rules:
            read = rule.compact_fields()
            for name in WHOLE_EVENT if read is None else sorted(read):
                names[name] = None
            for condition in rule.config.where:
                names[condition.field] = None
        fields = tuple(names)
        if len(fields) + KEY == slim_width:
            slimming = False  # nothing to cut
        positions = row_positions(fields)
        slots = []
        for bit_index, (index, rule) in enumerate(rules):
            assert rule.window is not None
            slots.append(RuleSlot(index, rule, rule.id, 1 << bit_index, rule.window.ms, rule.rows_judge(),
                                  _aggregate_maker(rule, positions), needs_history=bool(rule.needs_full_history)))
        always = sum(s.bit for s in slots if not s.rule.config.where)
        filtered: list[tuple[int, list[tuple[int, dict[Any, bool], Condition]]]] = [
            (s.bit, [(positions[c.field], {}, c) for c in s.rule.config.where]) for s in slots if s.rule.config.where]
        text = tuple(position for name, position in positions.items() if name not in _NOT_SHARED)
        layout = RowLayout(key_field, fields, positions, slots, longest, always, filtered, text,
                           full_bytes=layout_row_bytes(fields))
        if slimming:
            for slot in slots:
                slot.whole_rows = slot.window_ms < longest
            layout.short_ms = max(s.window_ms for s in slots if s.whole_rows)
            layout.slim_width = slim_width
            layout.slim_bytes = layout_row_bytes(fields[:slim_width - KEY])
        layouts[key_field] = layout
    return layouts


def _slimmable(rules: Sequence[tuple[int, Rule[Any]]], longest: int) -> bool:
    """Whether old rows may be slimmed: some rules have shorter windows, and every rule of the
    longest window judges rows itself and says which fields it reads (the default `judge_rows`
    rebuilds events from every field of a row)."""
    if all(rule.window is not None and rule.window.ms == longest for _, rule in rules):
        return False
    return all(rule.compact_fields() is not None and rule.rows_judge() == rule.judge_rows
               for _, rule in rules if rule.window is not None and rule.window.ms == longest)


def _aggregate_maker(rule: Rule[Any], positions: Mapping[str, int]) -> Callable[[], WindowAggregate | None]:
    return lambda: rule.running_aggregate(positions)
