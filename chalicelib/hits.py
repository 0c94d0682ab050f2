"""The hit record: one per (rule, event) that fired, the same everywhere it is written."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

HIT_ID_LENGTH = 32


def hit_id(rule_id: str, event_id: str) -> str:
    """`sha256(rule_id + "|" + event_id)`, hex, shortened: the same hit always has the same id."""
    return hashlib.sha256(f"{rule_id}|{event_id}".encode()).hexdigest()[:HIT_ID_LENGTH]


@dataclass(frozen=True, slots=True)
class EdgeEnd:
    field: str
    value: str


@dataclass(frozen=True, slots=True)
class HitEdge:
    label: str
    from_: EdgeEnd
    to: EdgeEnd

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "from": {"field": self.from_.field, "value": self.from_.value},
                "to": {"field": self.to.field, "value": self.to.value}}


@dataclass(frozen=True, slots=True)
class Hit:
    hit_id: str
    rule_id: str
    kind: str
    mode: str
    severity: str
    event_id: str
    ts: str  # ISO-8601 UTC of the judged event
    account_id: str
    key: str
    key_value: str
    value: float | int
    threshold: float | int
    ruleset_version: str
    edge: HitEdge
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["edge"] = self.edge.to_dict()
        return out
