"""The hit record: one per (rule, event) that fired, the same everywhere it is written."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

HIT_ID_LENGTH = 32

#: how a hit is written as JSON text everywhere (hit sink lines, log lines, graph evidence):
#: `json.dumps(value, default=str, separators=(",", ":"))`, one encoder instead of one per call
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))
hit_json = _ENCODER.encode


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
    #: `evidence` as JSON text once made (`evidence_json`): the graph edge and the hit's line share it
    _evidence_text: str | None = field(default=None, init=False, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in HIT_FIELDS}
        out["edge"] = self.edge.to_dict()
        return out

    def evidence_json(self) -> str:
        """`hit_json(self.evidence)`, made once per hit (a hit is frozen; its evidence is not changed)."""
        text = self._evidence_text
        if text is None:
            text = hit_json(self.evidence)
            object.__setattr__(self, "_evidence_text", text)
        return text

    def json_line(self) -> str:
        """`hit_json(self.to_dict())`, the same text, with the evidence's text shared with the graph:
        `evidence` is the dict's last key, so the whole is the rest's object with it appended."""
        head = {name: getattr(self, name) for name in HIT_FIELDS[:-1]}
        head["edge"] = self.edge.to_dict()
        return f'{hit_json(head)[:-1]},"evidence":{self.evidence_json()}}}'


#: a hit's fields, in order (its JSON object's keys); `evidence` is the last
HIT_FIELDS = ("hit_id", "rule_id", "kind", "mode", "severity", "event_id", "ts", "account_id", "key", "key_value",
              "value", "threshold", "ruleset_version", "edge", "evidence")
