"""`new_key_fan_out`: a key nobody used before suddenly reached by many distinct values (a new payee
collecting from many customers within hours: an authorised push-payment scam).

The window splits like `habit_burst`'s: the *history* - events with `event.ts - window < ts <=
event.ts - burst` - and the *burst* - events with `event.ts - burst < ts <= event.ts` (the event
included). The key is *new* when its history holds at most `max_history` events; the rule fires
when the key is new and the burst holds more than `threshold` distinct non-null values of
`distinct`. A utility, school or payroll payee many customers pay on one morning has a history, so
it is not new; a key seen for the first time is judged only on its burst.

The kind `needs_full_history`: the engine judges it only once the time-series store has observed
the whole window before the event (`observed_since <= event.ts - window`); before that - a stream
or deployment younger than the window, where no key has a history yet - it stays silent.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from chalicelib.events import ROW_TS, Transaction, WindowRow
from chalicelib.rules import limits
from chalicelib.rules.base import (
    EVIDENCE_IDS_CAP,
    BurstConfig,
    Finding,
    Rule,
    WindowAggregate,
    check_field_name,
    rows_evidence,
    split_at_burst,
    split_rows_at_burst,
    window_evidence,
)
from chalicelib.rules.describe import Aggregate, register_aggregate
from chalicelib.rules.registry import register_rule_kind


class NewKeyFanOutConfig(BurstConfig):
    kind: Literal["new_key_fan_out"] = "new_key_fan_out"
    distinct: str = "account_id"
    threshold: int = Field(ge=0, le=limits.MAX_COUNT)
    max_history: int = Field(default=0, ge=0, le=limits.MAX_COUNT)

    _check_distinct = field_validator("distinct")(check_field_name)


@register_rule_kind
class NewKeyFanOutRule(Rule[NewKeyFanOutConfig]):
    config_model = NewKeyFanOutConfig
    #: "no history" means something only where the store has watched the whole window
    needs_full_history = True

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        cfg = self.config
        return self._fan_out(event, window, *split_at_burst(event, window, cfg.burst, cfg.distinct), window_evidence)

    def judge_rows(self, event: Transaction, window: Sequence[WindowRow],
                   positions: Mapping[str, int]) -> Finding | None:
        cfg = self.config
        return self._fan_out(event, window, *split_rows_at_burst(event, window, cfg.burst, positions[cfg.distinct]),
                             rows_evidence)

    def fields_read(self) -> frozenset[str]:
        return frozenset({self.config.distinct})

    def window_aggregate(self, positions: Mapping[str, int]) -> WindowAggregate:
        return _NewKeyBurst(positions[self.config.distinct], self.config)

    def _fan_out(self, event: Transaction, window: Sequence[Any], in_history: list[bool], values: list[object],
                 evidence_of: Callable[[Transaction, Sequence[Any], timedelta], dict[str, Any]]) -> Finding | None:
        cfg = self.config
        history = sum(in_history)
        if history > cfg.max_history:
            return None
        distinct = dict.fromkeys(v for is_history, v in zip(in_history, values, strict=True) if not is_history)
        distinct.pop(None, None)
        if len(distinct) <= cfg.threshold:
            return None
        burst = [item for item, is_history in zip(window, in_history, strict=True) if not is_history]
        evidence = evidence_of(event, burst, cfg.burst)
        evidence.update(history_count=history, distinct_values=[str(v) for v in list(distinct)[:EVIDENCE_IDS_CAP]])
        return Finding(len(distinct), cfg.threshold, evidence)


class _NewKeyBurst(WindowAggregate):
    """The history's row count and the burst's distinct values, kept as rows age out of the burst
    into the history: rows are added newest last and leave oldest first (as in `habit_burst`)."""

    __slots__ = ("burst_ms", "config", "counts", "history_rows", "position", "recent")

    def __init__(self, position: int, config: NewKeyFanOutConfig) -> None:
        self.position = position
        self.config = config
        self.burst_ms = config.burst.ms
        self.recent: deque[tuple[Any, ...]] = deque()
        self.counts: Counter[Any] = Counter()  # non-null values of the rows in `recent`
        self.history_rows = 0

    def add(self, row: tuple[Any, ...]) -> None:
        self.recent.append(row)
        if (value := row[self.position]) is not None:
            self.counts[value] += 1

    def _forget(self, row: tuple[Any, ...]) -> None:
        value = row[self.position]
        if value is not None:
            self.counts[value] -= 1
            if not self.counts[value]:
                del self.counts[value]

    def remove(self, row: tuple[Any, ...]) -> None:
        if self.history_rows:  # the oldest row is in the history
            self.history_rows -= 1
        else:
            self._forget(self.recent.popleft())

    def may_fire(self, row: tuple[Any, ...], window_start_ms: int) -> bool:
        split = row[ROW_TS] - self.burst_ms
        recent = self.recent
        while recent and recent[0][ROW_TS] <= split:
            self.history_rows += 1
            self._forget(recent.popleft())
        return self.history_rows <= self.config.max_history and len(self.counts) > self.config.threshold


@register_aggregate("new_key_fan_out")
def describe_new_key_fan_out(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    cfg = rule.config
    split = event.ts - cfg.burst
    history = sum(1 for x in window if x.ts <= split)
    if history > cfg.max_history:
        return Aggregate(None, cfg.threshold, f"the {rule.key_field} is not new: {history} events in its history "
                                              f"(before the last {cfg.burst}), more than max_history {cfg.max_history}")
    distinct = {x.get(cfg.distinct) for x in window if x.ts > split} - {None}
    return Aggregate(len(distinct), cfg.threshold, f"distinct {cfg.distinct} values in the last {cfg.burst} "
                                                   f"of a new {rule.key_field} ({history} events before)")
