"""`linked_component`: an account in a group tightly linked by unusual shared identifiers.

The component is the set of accounts reached from the event's account through identifiers of the
`via` fields within `max_hops` account-to-account steps (at most `max_accounts` of them), with the
links among the accounts of the last hop read too - so a ring without a hub (one member shares a
device with the next, who shares a phone with the next...) is seen as a whole, not just the
seed's neighbours. Identifiers shared by more than `max_accounts_per_identifier` accounts are not
followed, and only strong links (`min_link_share`, `min_link_uses`: see `shared_identifier`). The
component is scored by `chalicelib.linkage` with per-field `weights` and `crowd`:

* `evidence` - weighted links (an identifier shared by two counts fully, one shared by a crowd
  barely; a device or card weighs more than an e-mail);
* `cohesion` - evidence per link a spanning tree would need (a chain of single chance collisions
  stays near its kind weight, a group sharing two identifiers pairwise scores about double).

Fires when the component has at least `min_accounts` accounts, `cohesion >= min_cohesion`,
`evidence > threshold`, and the event's own account is linked into it with weight at least
`min_account_links` (so a bystander who shares one e-mail with a ring member is not the ring).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from chalicelib.entities import DEFAULT_VIA, FIELD_OF_LABEL, LINKABLE, GraphView, ReachQuery
from chalicelib.events import Transaction
from chalicelib.linkage import (
    DEFAULT_CROWD,
    DEFAULT_KIND_WEIGHTS,
    DEFAULT_MIN_LINK_USES,
    score_component,
)
from chalicelib.rules import limits
from chalicelib.rules.base import EVIDENCE_IDS_CAP, Finding, GraphRule, RuleConfig
from chalicelib.rules.registry import register_rule_kind
from chalicelib.rules.shared_identifier import (
    LinkShare,
    LinkUses,
    check_link_share,
    check_via,
    default_link_shares,
    link_share_query,
)

KindWeight = Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)]


class LinkedComponentConfig(RuleConfig):
    kind: Literal["linked_component"] = "linked_component"
    via: tuple[str, ...] = DEFAULT_VIA
    max_hops: int = Field(default=3, ge=1, le=4)
    max_accounts: int = Field(default=50, ge=2, le=500)
    max_accounts_per_identifier: int = Field(default=20, ge=2, le=limits.MAX_COUNT)
    weights: dict[str, KindWeight] = Field(default_factory=lambda: dict(DEFAULT_KIND_WEIGHTS))
    crowd: int = Field(default=DEFAULT_CROWD, ge=1, le=limits.MAX_COUNT)
    min_accounts: int = Field(default=5, ge=2, le=500)
    min_cohesion: float = Field(default=0.8, ge=0, le=10, allow_inf_nan=False)
    min_account_links: float = Field(default=1.0, ge=0, le=100, allow_inf_nan=False)
    threshold: float = Field(default=0.0, ge=0, le=limits.MAX_COUNT, allow_inf_nan=False)
    min_link_share: LinkShare = Field(default_factory=default_link_shares)
    min_link_uses: LinkUses = DEFAULT_MIN_LINK_USES

    _check_via = field_validator("via")(check_via)
    _check_link_share = field_validator("min_link_share")(check_link_share)

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(LINKABLE))
        if unknown:
            raise ValueError(f"weights are per identifier field among {', '.join(LINKABLE)}; got {unknown}")
        return {**DEFAULT_KIND_WEIGHTS, **weights}


@register_rule_kind
class LinkedComponentRule(GraphRule[LinkedComponentConfig]):
    config_model = LinkedComponentConfig

    def reach_query(self) -> ReachQuery:
        cfg = self.config
        return ReachQuery(cfg.via, cfg.max_hops, cfg.max_accounts_per_identifier, closed=True,
                          max_accounts=cfg.max_accounts, min_link_share=link_share_query(cfg.min_link_share),
                          min_link_uses=cfg.min_link_uses)

    def judge_graph(self, event: Transaction, view: GraphView) -> Finding | None:
        cfg = self.config
        reach = view.reach[self.query].get(event.account_id)
        if reach is None or len(reach.hops) < cfg.min_accounts:
            return None
        score = score_component(reach.hops, reach.identifiers.values(), cfg.weights, cfg.crowd)
        own = score.account_links(event.account_id)
        if score.cohesion < cfg.min_cohesion or score.evidence <= cfg.threshold or own < cfg.min_account_links:
            return None
        accounts = sorted(reach.hops, key=lambda a: (reach.hops[a], a))
        evidence = {
            "component_size": len(accounts),
            "evidence": score.evidence,
            "cohesion": score.cohesion,
            "account_links": round(own, 9),
            "truncated": len(accounts) >= cfg.max_accounts,
            "accounts": accounts[:EVIDENCE_IDS_CAP],
            "identifiers": [{"label": link.identifier.label, "key": link.identifier.key,
                             "accounts": len(link.identifier.accounts), "in_component": link.members,
                             "weight": round(link.weight, 6)} for link in score.links[:EVIDENCE_IDS_CAP]],
        }
        mine = [link for link in score.links if event.account_id in link.identifier.accounts]
        edge_to = (FIELD_OF_LABEL[mine[0].identifier.label], mine[0].identifier.key) if mine else None
        return Finding(score.evidence, cfg.threshold, evidence, edge_to)
