"""`near_flagged`: an account close to accounts that were recently flagged.

Counts the *other* accounts within `hops` account-to-account steps through shared identifiers
(`via`) that have an enforce-mode hit with `event.ts - window < hit.ts <= event.ts` (from the
rules listed in `rules`, or any rule that is not itself a graph rule). Fires when that count is
greater than `threshold` (default 0: any flagged neighbour). Only strong links are followed
(`min_link_share`, `min_link_uses`: see `shared_identifier`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from chalicelib.entities import DEFAULT_VIA, GraphView, ReachQuery, iso_ms
from chalicelib.events import Transaction
from chalicelib.linkage import DEFAULT_MIN_LINK_USES
from chalicelib.rules import limits
from chalicelib.rules.base import EVIDENCE_IDS_CAP, Duration, Finding, GraphRule, RuleConfig, RuleContext
from chalicelib.rules.registry import flags_account, register_rule_kind
from chalicelib.rules.shared_identifier import (
    LinkShare,
    LinkUses,
    check_link_share,
    check_via,
    default_link_shares,
    link_share_query,
)


class NearFlaggedConfig(RuleConfig):
    kind: Literal["near_flagged"] = "near_flagged"
    via: tuple[str, ...] = DEFAULT_VIA
    hops: int = Field(default=2, ge=1, le=4)
    window: Duration
    threshold: int = Field(default=0, ge=0, le=limits.MAX_COUNT)
    rules: tuple[str, ...] | None = Field(default=None, max_length=limits.MAX_RULES)
    max_accounts_per_identifier: int | None = Field(default=None, ge=2, le=limits.MAX_COUNT)
    min_link_share: LinkShare = Field(default_factory=default_link_shares)
    min_link_uses: LinkUses = DEFAULT_MIN_LINK_USES

    _check_via = field_validator("via")(check_via)
    _check_link_share = field_validator("min_link_share")(check_link_share)


@register_rule_kind
class NearFlaggedRule(GraphRule[NearFlaggedConfig]):
    config_model = NearFlaggedConfig
    flags_account = False

    def __init__(self, config: NearFlaggedConfig, context: RuleContext) -> None:
        super().__init__(config, context)
        self.counted_rules: frozenset[str] | None = frozenset(config.rules) if config.rules else None

    @property
    def hits_lookback(self) -> Duration:
        return self.config.window

    def reach_query(self) -> ReachQuery:
        cfg = self.config
        return ReachQuery(cfg.via, cfg.hops, cfg.max_accounts_per_identifier,
                          min_link_share=link_share_query(cfg.min_link_share), min_link_uses=cfg.min_link_uses)

    def counts(self, rule_id: str, kind: str) -> bool:
        if self.counted_rules is not None:
            return rule_id in self.counted_rules
        return flags_account(kind)

    def judge_graph(self, event: Transaction, view: GraphView) -> Finding | None:
        reach = view.reach[self.query].get(event.account_id)
        if reach is None:
            return None
        by_account = view.hits_by_account
        hops = reach.hops
        with_hits = [account for account in hops.keys() & by_account.keys() if hops[account]]  # not itself
        if len(with_hits) <= self.config.threshold:
            return None  # too few neighbours with any hit to be flagged
        since, until = iso_ms(event.ts - self.config.window), iso_ms(event.ts)
        flagged: dict[str, list[str]] = {}
        for account in with_hits:
            for hit in by_account[account]:
                if hit.mode == "enforce" and since < hit.ts <= until and self.counts(hit.rule_id, hit.kind):
                    flagged.setdefault(account, []).append(hit.rule_id)
        if len(flagged) <= self.config.threshold:
            return None
        nearest = sorted(flagged, key=lambda a: (reach.hops[a], a))
        evidence = {
            "flagged_accounts": [{"account": a, "hops": reach.hops[a], "rules": sorted(set(flagged[a]))}
                                 for a in nearest[:EVIDENCE_IDS_CAP]],
            "window_start": since,
            "window_end": until,
        }
        return Finding(len(flagged), self.config.threshold, evidence, ("account_id", nearest[0]))
