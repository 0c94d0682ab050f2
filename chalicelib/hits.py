"""The hit record: one per (rule, event) that fired, the same everywhere it is written."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import Any

HIT_ID_LENGTH = 32

#: how a hit is written as JSON text everywhere (hit sink lines, log lines, graph evidence):
#: `json.dumps(value, default=str, separators=(",", ":"))`, one encoder instead of one per call
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))
hit_json = _ENCODER.encode
#: a string as that encoder writes it (its own C function; TypeError for anything but a string)
_text = encode_basestring_ascii


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
        """`hit_json(self.to_dict())`, the same text, with the evidence's text shared with the graph.
        The rest is written field by field as the encoder writes it, where every field has the type
        the hit is declared with (str; a value and threshold of exactly int or float); otherwise
        it is encoded, `evidence` being the dict's last key (the whole is the rest's object with it
        appended)."""
        try:
            head = self._head_json()
        except TypeError:  # a field of another type: the encoder decides how it is written
            rest = self.to_dict()
            del rest["evidence"]
            head = hit_json(rest)[:-1]
        return f'{head},"evidence":{self.evidence_json()}}}'

    def _head_json(self) -> str:
        edge, source, target = self.edge, self.edge.from_, self.edge.to
        return (f'{{"hit_id":{_text(self.hit_id)},"rule_id":{_text(self.rule_id)},"kind":{_text(self.kind)},'
                f'"mode":{_text(self.mode)},"severity":{_text(self.severity)},"event_id":{_text(self.event_id)},'
                f'"ts":{_text(self.ts)},"account_id":{_text(self.account_id)},"key":{_text(self.key)},'
                f'"key_value":{_text(self.key_value)},"value":{_number(self.value)},'
                f'"threshold":{_number(self.threshold)},"ruleset_version":{_text(self.ruleset_version)},'
                f'"edge":{{"label":{_text(edge.label)},"from":{{"field":{_text(source.field)},'
                f'"value":{_text(source.value)}}},"to":{{"field":{_text(target.field)},"value":{_text(target.value)}}}}}')


def _number(value: Any) -> str:
    """An int or float as the encoder writes it (`allow_nan`: NaN, Infinity, -Infinity); TypeError
    for any other type, bool and subclasses included (the encoder has its own ways with those)."""
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if math.isfinite(value):
            return float.__repr__(value)
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    raise TypeError(f"not a plain number: {kind.__name__}")


#: a hit's fields, in order (its JSON object's keys); `evidence` is the last
HIT_FIELDS = ("hit_id", "rule_id", "kind", "mode", "severity", "event_id", "ts", "account_id", "key", "key_value",
              "value", "threshold", "ruleset_version", "edge", "evidence")
