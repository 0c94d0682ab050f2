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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chalicelib.entities import FIELD_OF_LABEL, Identifier

#: default weight per identifier field (the vertex label's field name)
DEFAULT_KIND_WEIGHTS: dict[str, float] = {"device_id": 1.0, "card_id": 1.0, "phone": 0.75, "email": 0.5, "ip": 0.25}
DEFAULT_CROWD = 10


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
