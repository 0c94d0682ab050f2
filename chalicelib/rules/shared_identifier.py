"""`shared_identifier`: an account linked through shared identifiers to too many accounts.

The component is the set of accounts reached from the event's account through identifiers of the
`via` fields (an e-mail, phone, device... used by both), at most `max_hops` account-to-account
steps away, the account itself included. Fires when it has more than `threshold` accounts.
Transacting with the same merchant is not sharing an identifier: `merchant_id` is not allowed in
`via`. Identifiers used by more than `max_accounts_per_identifier` accounts (an office or carrier
IP) are not followed. Only strong links are followed (`chalicelib.linkage`): an account's link to
an identifier counts if it used it on at least `min_link_share` of its events with that field and
at least `min_link_uses` times, so e-mails drawn at random per transaction do not make a ring.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from chalicelib.entities import FIELD_OF_LABEL, LINKABLE, GraphView, ReachQuery
from chalicelib.events import Transaction
from chalicelib.linkage import DEFAULT_LINK_SHARES, DEFAULT_MIN_LINK_USES
from chalicelib.rules import limits
from chalicelib.rules.base import EVIDENCE_IDS_CAP, Finding, GraphRule, RuleConfig
from chalicelib.rules.registry import register_rule_kind

#: the link-strength fields every graph kind has (`chalicelib.linkage`, DESIGN.md "Link strength")
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
#: one minimum share for every field, or one per field (fields not named: the default)
LinkShare = Share | dict[str, Share]
LinkUses = Annotated[int, Field(ge=1, le=limits.MAX_COUNT)]


def check_link_share(value: float | dict[str, float]) -> float | dict[str, float]:
    """One share for every field, or per field (the fields not named keep DEFAULT_LINK_SHARES)."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(LINKABLE))
        if unknown:
            raise ValueError(f"min_link_share is one share or one per identifier field among {', '.join(LINKABLE)}; "
                             f"got {unknown}")
        return {**DEFAULT_LINK_SHARES, **value}
    return value


def default_link_shares() -> dict[str, float]:
    return dict(DEFAULT_LINK_SHARES)


def link_share_query(value: float | dict[str, float]) -> float | tuple[tuple[str, float], ...]:
    """The config's min_link_share as ReachQuery holds it (hashable)."""
    return tuple(sorted(value.items())) if isinstance(value, dict) else value


def check_via(via: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [v for v in via if v not in LINKABLE]
    if unknown or not via:
        raise ValueError(f"via must list identifier fields among {', '.join(LINKABLE)}; got {list(via)}")
    return tuple(dict.fromkeys(via))


class SharedIdentifierConfig(RuleConfig):
    kind: Literal["shared_identifier"] = "shared_identifier"
    via: tuple[str, ...] = ("email", "phone", "device_id")
    threshold: int = Field(ge=1, le=limits.MAX_COUNT)
    max_hops: int = Field(default=1, ge=1, le=4)
    max_accounts_per_identifier: int | None = Field(default=None, ge=2, le=limits.MAX_COUNT)
    min_link_share: LinkShare = Field(default_factory=default_link_shares)
    min_link_uses: LinkUses = DEFAULT_MIN_LINK_USES

    _check_via = field_validator("via")(check_via)
    _check_link_share = field_validator("min_link_share")(check_link_share)


@register_rule_kind
class SharedIdentifierRule(GraphRule[SharedIdentifierConfig]):
    config_model = SharedIdentifierConfig
    flags_account = False

    def reach_query(self) -> ReachQuery:
        cfg = self.config
        return ReachQuery(cfg.via, cfg.max_hops, cfg.max_accounts_per_identifier,
                          min_link_share=link_share_query(cfg.min_link_share), min_link_uses=cfg.min_link_uses)

    def judge_graph(self, event: Transaction, view: GraphView) -> Finding | None:
        reach = view.reach[self.query].get(event.account_id)
        if reach is None or len(reach.hops) <= self.config.threshold:
            return None
        accounts = sorted(reach.hops, key=lambda a: (reach.hops[a], a))
        shared = sorted((i for i in reach.identifiers.values() if len(i.accounts) > 1),
                        key=lambda i: (-len(i.accounts), i.label, i.key))
        evidence = {
            "component_size": len(accounts),
            "max_hops": self.config.max_hops,
            "accounts": accounts[:EVIDENCE_IDS_CAP],
            "identifiers": [{"label": i.label, "key": i.key, "accounts": len(i.accounts)}
                            for i in shared[:EVIDENCE_IDS_CAP]],
        }
        edge_to = (FIELD_OF_LABEL[shared[0].label], shared[0].key) if shared else None
        return Finding(len(accounts), self.config.threshold, evidence, edge_to)
