"""How strongly a group of accounts is linked through shared identifiers: pure scoring, no I/O.

An identifier shared by `n` accounts links them; how much that says depends on its kind (sharing a
device or a card is rarer than sharing a phone, an e-mail is often a typo or a family's) and on
how many share it: two accounts on one device is strong evidence, a whole office on one IP is not.
Its weight is `kind_weight x min(1, crowd / (n - 1))` - full up to `crowd + 1` accounts, then
falling like 1 / (n - 1).

Inside a component C, identifier i with `m_i` members in C gives `m_i - 1` links (what it takes to
join its members). The component's *evidence* is the weighted sum of those links and its
*cohesion* the evidence per link a spanning tree would need, `evidence / (|C| - 1)`: a chain of
single chance collisions (a tree) has cohesion of about its average kind weight, a group whose
members share two identifiers each (the reference ring's e-mail *and* phone) about twice that,
an office joined only by its IP almost nothing. `rank` (evidence x cohesion) orders rings: a
large tree of coincidences ranks below a smaller group that is linked over and over.

*Link strength* is how an account uses an identifier: `share(a, i) = uses(a, i) / uses(a, field)`,
the share of the account's events with a value in that field that carried this one (a ring's
e-mail on every transaction: 1; one e-mail among three drawn at random: about 1/3). A link is
followed only when `share >= min_link_share` and `uses >= min_link_uses` (`strong`): a weak link
weighs nothing, a strong one fully, so the scores above are computed over strong links only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chalicelib.entities import FIELD_OF_LABEL, Identifier

#: default weight per identifier field (the vertex label's field name)
DEFAULT_KIND_WEIGHTS: dict[str, float] = {"device_id": 1.0, "card_id": 1.0, "phone": 0.75, "email": 0.5, "ip": 0.25}
DEFAULT_CROWD = 10
#: the share of its events with a field on which an account must use an identifier for the link to
#: count, per field: above one half for e-mails and phones (so an account binds to at most one: an
#: e-mail drawn at random per transaction does not bind), 0.2 for devices and cards (a customer, or
#: a ring member, legitimately switches between two or three devices)
DEFAULT_LINK_SHARES: dict[str, float] = {"email": 0.6, "phone": 0.6, "ip": 0.6, "device_id": 0.2, "card_id": 0.2}
DEFAULT_MIN_LINK_SHARE = 0.6  # for a field not named
DEFAULT_MIN_LINK_USES = 1


def link_share(uses: int, total: int) -> float:
    """The share of an account's events with a value in a field that carried one identifier."""
    return round(uses / total, 9) if total > 0 else 0.0


def member_share(ident: Identifier, account: str) -> float:
    """`account`'s share on `ident` (1.0 where the store did not say: links count as always used)."""
    if not ident.shares:
        return 1.0
    try:
        return ident.shares[ident.accounts.index(account)]
    except ValueError:
        return 0.0


#: a minimum share for every field, or per field as (field, share) pairs (hashable, for ReachQuery)
MinShare = float | tuple[tuple[str, float], ...]


def share_floor(min_share: MinShare | Mapping[str, float], label: str) -> float:
    """The minimum share for an identifier of vertex `label` (fields not named: DEFAULT_LINK_SHARES)."""
    if isinstance(min_share, int | float):
        return float(min_share)
    field = FIELD_OF_LABEL.get(label, label)
    return dict(min_share).get(field, DEFAULT_LINK_SHARES.get(field, DEFAULT_MIN_LINK_SHARE))


def link_shares(min_share: float | None) -> float | dict[str, float]:
    """What investigators' views pass to `GraphStore.rings`: one share, or the per-field defaults."""
    return dict(DEFAULT_LINK_SHARES) if min_share is None else min_share


def strong(ident: Identifier, min_share: MinShare | Mapping[str, float], min_uses: int) -> Identifier:
    """`ident` with only the accounts whose link to it is strong enough (all when not known)."""
    return strong_at(ident, share_floor(min_share, ident.label), min_uses)


def strong_at(ident: Identifier, min_share: float, min_uses: int) -> Identifier:
    """`strong` with the share floor for `ident`'s label already worked out (`share_floor`)."""
    if not ident.shares or (min_share <= 0 and min_uses <= 1):
        return ident
    if min(ident.shares) >= min_share and min(ident.uses) >= min_uses:
        return ident
    keep = [k for k in range(len(ident.accounts)) if ident.shares[k] >= min_share and ident.uses[k] >= min_uses]
    return Identifier(ident.label, ident.key, tuple(ident.accounts[k] for k in keep),
                      tuple(ident.uses[k] for k in keep), tuple(ident.shares[k] for k in keep))


@dataclass(frozen=True)
class Link:
    identifier: Identifier
    members: int  # accounts of the component that have it
    weight: float  # per link


@dataclass(frozen=True)
class ComponentScore:
    accounts: tuple[str, ...]
    links: tuple[Link, ...]  # identifiers with at least two members in the component, strongest first
    evidence: float
    cohesion: float

    @property
    def rank(self) -> float:
        return self.evidence * self.cohesion

    def account_links(self, account: str) -> float:
        """The weight of the identifiers linking `account` to the rest of the component."""
        if account not in self.accounts:
            return 0.0
        return sum(link.weight for link in self.links if account in link.identifier.accounts)


def identifier_weight(label: str, sharing: int, kind_weights: Mapping[str, float] = DEFAULT_KIND_WEIGHTS,
                      crowd: int = DEFAULT_CROWD) -> float:
    """Weight of one link through an identifier of vertex `label` that `sharing` accounts have."""
    kind = kind_weights.get(FIELD_OF_LABEL.get(label, label), 0.0)
    return kind * min(1.0, crowd / max(1, sharing - 1))


def score_component(accounts: Iterable[str], identifiers: Iterable[Identifier],
                    kind_weights: Mapping[str, float] = DEFAULT_KIND_WEIGHTS,
                    crowd: int = DEFAULT_CROWD) -> ComponentScore:
    members = frozenset(accounts)
    links = []
    for ident in identifiers:
        inside = len(members.intersection(ident.accounts))
        if inside >= 2:
            links.append(Link(ident, inside, identifier_weight(ident.label, len(ident.accounts), kind_weights,
                                                               crowd)))
    links.sort(key=lambda link: (-link.weight * (link.members - 1), link.identifier.label, link.identifier.key))
    evidence = sum(link.weight * (link.members - 1) for link in links)
    cohesion = evidence / (len(members) - 1) if len(members) > 1 else 0.0
    return ComponentScore(tuple(sorted(members)), tuple(links), round(evidence, 9), round(cohesion, 9))
