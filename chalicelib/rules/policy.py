"""The decision policy of rules.yaml: which enforce-mode hits decline a payment, which send it to
review, which approve it anyway.

    decisions:
      severity: {critical: decline, high: review}   # the default; unnamed severities approve
      rules: {ip-fanout-10m: decline, new-device: approve}   # per-rule overrides win

The decision of an event is the strongest outcome among its enforce-mode hits (decline > review >
approve); shadow-mode hits never change it, and an event without hits is approved. Pure: the
decision route (chalicelib/decisions.py) and `rules test` both call `decide`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.rules import limits

Outcome = Literal["approve", "review", "decline"]
SeverityName = Literal["low", "medium", "high", "critical"]
OUTCOMES: tuple[Outcome, ...] = ("approve", "review", "decline")  # weakest first
_STRENGTH = {outcome: rank for rank, outcome in enumerate(OUTCOMES)}
RuleId = str


def _default_by_severity() -> dict[SeverityName, Outcome]:
    return {"critical": "decline", "high": "review"}


class DecisionPolicy(BaseModel):
    """`decisions:` of rules.yaml: outcome by severity, then per-rule overrides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    severity: dict[SeverityName, Outcome] = Field(default_factory=_default_by_severity, max_length=4)
    rules: dict[RuleId, Outcome] = Field(default_factory=dict, max_length=limits.MAX_RULES)

    def outcome_of(self, rule_id: str, severity: str) -> Outcome:
        """What one enforce-mode hit of this rule asks for."""
        if rule_id in self.rules:
            return self.rules[rule_id]
        for name, outcome in self.severity.items():
            if name == severity:
                return outcome
        return "approve"

    def decide(self, hits: Iterable[tuple[str, str, str]]) -> Outcome:
        """The decision for an event's hits, given as (rule_id, mode, severity)."""
        decision: Outcome = "approve"
        for rule_id, mode, severity in hits:
            if mode != "enforce":
                continue
            outcome = self.outcome_of(rule_id, severity)
            if _STRENGTH[outcome] > _STRENGTH[decision]:
                decision = outcome
        return decision

    def is_default(self) -> bool:
        return self == DecisionPolicy()

    def canonical(self) -> Mapping[str, Mapping[str, str]]:
        return {"severity": dict(sorted(self.severity.items())), "rules": dict(sorted(self.rules.items()))}


DEFAULT_POLICY = DecisionPolicy()
