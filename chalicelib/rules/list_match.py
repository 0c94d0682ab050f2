"""`list_match`: the event's `field` is in a named list (a blocklist of IPs, cards, e-mails...).

Lists are declared once at the top of rules.yaml (`lists:`), inline or from a file of one value
per line, and are part of the ruleset version: editing a list file changes the version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import field_validator

from chalicelib.events import Transaction
from chalicelib.rules.base import Finding, Rule, RuleConfig, RuleContext, check_field_name
from chalicelib.rules.describe import Aggregate, register_aggregate
from chalicelib.rules.registry import register_rule_kind


class ListMatchConfig(RuleConfig):
    kind: Literal["list_match"] = "list_match"
    field: str
    list: str
    ignore_case: bool = False

    _check_field = field_validator("field")(check_field_name)


@register_rule_kind
class ListMatchRule(Rule[ListMatchConfig]):
    config_model = ListMatchConfig

    def __init__(self, config: ListMatchConfig, context: RuleContext) -> None:
        super().__init__(config, context)
        members = context.lists.get(config.list, frozenset())
        self._members = frozenset(m.lower() for m in members) if config.ignore_case else members

    @property
    def key_field(self) -> str:
        return self.config.field

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        value = event.get(self.config.field)
        if value is None:
            return None
        text = str(value).lower() if self.config.ignore_case else str(value)
        if text not in self._members:
            return None
        return Finding(1, 0, {"list": self.config.list, "value": str(value)})


@register_aggregate("list_match")
def describe_list_match(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    return Aggregate(0, 0, f"{rule.config.field} {event.get(rule.config.field)!r} is not in list {rule.config.list!r}")
