"""The row layout of the window cache: which fields its compact rows hold per key field, where,
and for which rules (the first of the three jobs of `rules/windows.py`; see there).

A held row is a store row (`events.WindowRow`: `(ts_ms, seq, event_id, key, *fields)`, the key
field first among the fields) with one more value appended: its where-mask, the bits of the
rules whose `where` it passes.
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
    """Estimated memory of one held row of `width` values (tuple, ints, strings, a Decimal) and its
    share of the aggregates; calibrated with tracemalloc on the default rules (about 750 bytes
    for the 9-value rows of account_id)."""
    return 128 + 72 * width


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
        names: dict[str, None] = {key_field: None}
        for _, rule in rules:
            read = rule.compact_fields()
            for name in WHOLE_EVENT if read is None else sorted(read):
                names[name] = None
            for condition in rule.config.where:
                names[condition.field] = None
        fields = tuple(names)
        positions = row_positions(fields)
        slots = []
        for bit_index, (index, rule) in enumerate(rules):
            assert rule.window is not None
            slots.append(RuleSlot(index, rule, rule.id, 1 << bit_index, rule.window.ms, rule.rows_judge(),
                                  _aggregate_maker(rule, positions), bool(rule.needs_full_history)))
        always = sum(s.bit for s in slots if not s.rule.config.where)
        filtered: list[tuple[int, list[tuple[int, dict[Any, bool], Condition]]]] = [
            (s.bit, [(positions[c.field], {}, c) for c in s.rule.config.where]) for s in slots if s.rule.config.where]
        text = tuple(position for name, position in positions.items() if name not in _NOT_SHARED)
        layouts[key_field] = RowLayout(key_field, fields, positions, slots, max(s.window_ms for s in slots), always,
                                       filtered, text)
    return layouts


def _aggregate_maker(rule: Rule[Any], positions: Mapping[str, int]) -> Callable[[], WindowAggregate | None]:
    return lambda: rule.running_aggregate(positions)
