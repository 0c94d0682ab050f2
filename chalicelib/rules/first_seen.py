"""`first_seen`: a value of `field` this key has not used within the window (a new device, IP...).

Judged only when the event has a value for `field` and the key has at least `min_history` earlier
events in the window, so a brand-new account is not flagged for everything it does first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator

from chalicelib.entities import entity_field_or_account
from chalicelib.events import ROW_EVENT_ID, Transaction, WindowRow
from chalicelib.rules import limits
from chalicelib.rules.base import (
    EVIDENCE_IDS_CAP,
    Finding,
    Rule,
    ValueCounts,
    WindowAggregate,
    WindowedConfig,
    check_field_name,
    rows_evidence,
    window_evidence,
)
from chalicelib.rules.describe import Aggregate, others, register_aggregate
from chalicelib.rules.registry import register_rule_kind


class FirstSeenConfig(WindowedConfig):
    kind: Literal["first_seen"] = "first_seen"
    field: str
    min_history: int = Field(default=1, ge=1, le=limits.MAX_MIN_HISTORY)

    _check_field = field_validator("field")(check_field_name)


@register_rule_kind
class FirstSeenRule(Rule[FirstSeenConfig]):
    config_model = FirstSeenConfig

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        earlier = [x for x in window if x.event_id != event.event_id]
        return self._first(event, [x.get(self.config.field) for x in earlier],
                           lambda: window_evidence(event, earlier, self.config.window))

    def judge_rows(self, event: Transaction, window: Sequence[WindowRow],
                   positions: Mapping[str, int]) -> Finding | None:
        position, event_id = positions[self.config.field], event.event_id
        earlier = [row for row in window if row[ROW_EVENT_ID] != event_id]
        return self._first(event, [row[position] for row in earlier],
                           lambda: rows_evidence(event, earlier, self.config.window))

    def _first(self, event: Transaction, earlier_values: list[object],
               window_evidence: Callable[[], dict[str, Any]]) -> Finding | None:
        """The event's value against the values of the earlier events of its window."""
        value = event.get(self.config.field)
        if value is None:
            return None
        if len(earlier_values) < self.config.min_history:
            return None
        known: dict[object, None] = {}
        for seen in earlier_values:
            if seen == value:
                return None
            if seen is not None:
                known[seen] = None
        evidence = window_evidence()
        evidence.update(new_value=str(value), known_values=[str(v) for v in list(known)[:EVIDENCE_IDS_CAP]])
        return Finding(1, 0, evidence)

    def fields_read(self) -> frozenset[str]:
        return frozenset({self.config.field})

    def window_aggregate(self, positions: Mapping[str, int]) -> WindowAggregate:
        return _Seen(positions[self.config.field], self.config.min_history)

    def edge_ends(self) -> tuple[str, str]:
        spec = self.config.edge
        return spec.from_ or "account_id", spec.to or entity_field_or_account(self.config.field)


class _Seen(ValueCounts):
    """The window's rows and how many of them hold each value of the field."""

    __slots__ = ("min_history",)

    def __init__(self, position: int, min_history: int) -> None:
        super().__init__(position)
        self.min_history = min_history

    def may_fire(self, row: tuple[Any, ...], window_start_ms: int) -> bool:
        value = row[self.position]
        # the event's own row is in the window: "earlier" and "seen before" leave it out
        return value is not None and self.rows - 1 >= self.min_history and self.counts[value] == 1


@register_aggregate("first_seen")
def describe_first_seen(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    cfg = rule.config
    earlier = others(event, window)
    if event.get(cfg.field) is None:
        return Aggregate(None, None, f"the event has no {cfg.field}")
    known = any(x.get(cfg.field) == event.get(cfg.field) for x in earlier)
    note = (f"{len(earlier)} earlier events (min_history {cfg.min_history}); "
            f"{cfg.field} {event.get(cfg.field)!r} {'already used' if known else 'new'}")
    return Aggregate(0 if known else 1, 0, note)
