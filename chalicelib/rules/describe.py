"""How `explain` states a rule's aggregate when the rule did not fire: each kind registers its own
*aggregate describer* beside its judge (at the end of the kind's module); plugin kinds register
theirs with the same decorator (`chalicelib.explanation.register_aggregate` is this one)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.events import Transaction
from chalicelib.rules.base import Rule


@dataclass(frozen=True)
class Aggregate:
    value: Any
    threshold: Any
    note: str = ""


Describer = Callable[[Rule[Any], Transaction, Sequence[Transaction]], Aggregate]
_DESCRIBERS: dict[str, Describer] = {}


def register_aggregate(kind: str) -> Callable[[Describer], Describer]:
    """Decorator: how `explain` computes a kind's aggregate when the rule did not fire."""

    def register(describer: Describer) -> Describer:
        _DESCRIBERS[kind] = describer
        return describer

    return register


def describer_of(kind: str) -> Describer:
    return _DESCRIBERS.get(kind, _undescribed)


def _undescribed(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    return Aggregate(None, getattr(rule.config, "threshold", None),
                     f"no aggregate describer for kind {rule.kind!r} (register one with register_aggregate)")


def others(event: Transaction, window: Sequence[Transaction]) -> list[Transaction]:
    """The window without the event itself."""
    return [x for x in window if x.event_id != event.event_id]
