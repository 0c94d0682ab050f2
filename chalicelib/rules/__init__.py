"""Declarative rules: kinds, the registry, the rules.yaml loader and hot-reloading sources."""

from __future__ import annotations

# Importing the built-in kinds registers them.
from chalicelib.rules import (  # noqa: F401
    amount_spike,
    composite,
    fan_out,
    first_seen,
    geo_velocity,
    habit_burst,
    linked_component,
    list_match,
    near_flagged,
    new_key_fan_out,
    shared_identifier,
    sum_over,
    velocity,
)
from chalicelib.rules.base import (
    Duration,
    Finding,
    GraphPhase,
    GraphRule,
    Rule,
    RuleConfig,
    RuleContext,
    WindowedConfig,
)
from chalicelib.rules.exceptions import RuleIssue, RuleKindError, RulesError, RulesFileError
from chalicelib.rules.loader import RuleSet, load_rules_file, load_rules_text
from chalicelib.rules.registry import register_rule_kind
from chalicelib.rules.sources import FileRulesSource, RejectedEdit, RulesSource, S3RulesSource, StaticRulesSource

__all__ = [
    "Duration",
    "FileRulesSource",
    "Finding",
    "GraphPhase",
    "GraphRule",
    "RejectedEdit",
    "Rule",
    "RuleConfig",
    "RuleContext",
    "RuleIssue",
    "RuleKindError",
    "RuleSet",
    "RulesError",
    "RulesFileError",
    "RulesSource",
    "S3RulesSource",
    "StaticRulesSource",
    "WindowedConfig",
    "load_rules_file",
    "load_rules_text",
    "register_rule_kind",
]
