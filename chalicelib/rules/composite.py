"""`composite`: a weighted sum of other rules' hits, so micro and macro signals combine in YAML.

`scope: event` sums the weights of the listed rules that hit this same event; `scope: account`
those that hit the event's account with `event.ts - window < hit.ts <= event.ts`. Each listed
rule counts once (its weight), however often it fired; shadow-mode hits count only with
`include_shadow: true` (weak signals kept in shadow, acted on only in combination). Fires
when the sum is greater than `threshold`. Composite rules are judged after every other rule of
the batch, and may not list other composite rules.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from chalicelib.entities import GraphView, iso_ms
from chalicelib.events import Transaction
from chalicelib.rules import limits
from chalicelib.rules.base import Duration, Finding, GraphPhase, GraphRule, RuleConfig
from chalicelib.rules.registry import register_rule_kind

Weight = Annotated[float, Field(gt=0, le=limits.MAX_WEIGHT, allow_inf_nan=False)]


class CompositeConfig(RuleConfig):
    kind: Literal["composite"] = "composite"
    rules: dict[str, Weight] = Field(min_length=1, max_length=limits.MAX_RULES)
    scope: Literal["event", "account"] = "event"
    window: Duration | None = None
    #: >= 0: with no listed hit the score is 0, so a negative threshold fires on every event.
    threshold: float = Field(ge=0, le=limits.MAX_WEIGHT, allow_inf_nan=False)
    include_shadow: bool = False  # let shadow-mode rules (weak signals) feed this composite

    @model_validator(mode="after")
    def _window_for_account_scope(self) -> CompositeConfig:
        if self.scope == "account" and self.window is None:
            raise ValueError("scope 'account' needs a window (e.g. window: 1h)")
        if self.scope == "event" and self.window is not None:
            raise ValueError("scope 'event' takes no window")
        if sum(self.rules.values()) <= self.threshold:
            raise ValueError(f"can never fire: the weights sum to {sum(self.rules.values()):g}, "
                             f"not more than the threshold {self.threshold:g}")
        return self


@register_rule_kind
class CompositeRule(GraphRule[CompositeConfig]):
    config_model = CompositeConfig
    phase = GraphPhase.COMPOSITE
    view = "composite"
    flags_account = False
    default_edge_to = "merchant_id"

    @property
    def hits_lookback(self) -> Duration | None:
        return self.config.window

    def judge_graph(self, event: Transaction, view: GraphView) -> Finding | None:
        cfg = self.config
        contributing: dict[str, list[str]] = {}
        if cfg.scope == "event":
            relevant = view.hits_by_event.get(event.event_id, [])
        else:
            assert cfg.window is not None
            relevant = view.hits_by_account.get(event.account_id, [])
            if relevant:
                since, until = iso_ms(event.ts - cfg.window), iso_ms(event.ts)
                relevant = [h for h in relevant if since < h.ts <= until]
        for hit in relevant:
            if hit.rule_id in cfg.rules and (hit.mode == "enforce" or cfg.include_shadow):
                contributing.setdefault(hit.rule_id, []).append(hit.hit_id)
        score = sum(cfg.rules[r] for r in contributing)
        if score <= cfg.threshold:
            return None
        return Finding(round(score, 9), cfg.threshold, {
            "scope": cfg.scope,
            "rules": {r: {"weight": cfg.rules[r], "hits": ids[:5]} for r, ids in sorted(contributing.items())},
        })
