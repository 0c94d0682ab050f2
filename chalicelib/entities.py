"""The entity graph's model: which event fields become vertices and which relationships link them.

Pure: turns a batch of transactions into the set of vertices and relationship edges it implies,
deduplicated within the batch, with first/last seen times. The GraphStore writes them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from operator import attrgetter
from typing import NamedTuple

from chalicelib.events import Transaction
from chalicelib.hits import Hit

_ZERO = timedelta(0)

#: event field -> vertex label. Every vertex carries its natural id in the property `key`.
VERTEX_LABELS: dict[str, str] = {
    "account_id": "Account",
    "merchant_id": "Merchant",
    "email": "Email",
    "phone": "Phone",
    "ip": "IP",
    "device_id": "Device",
    "card_id": "Card",
}

#: event field -> label of the edge Account -[label]-> that field's vertex.
RELATIONSHIPS: dict[str, str] = {
    "email": "HAS_EMAIL",
    "phone": "HAS_PHONE",
    "ip": "USES_IP",
    "device_id": "USES_DEVICE",
    "merchant_id": "PAYS",
    "card_id": "USES_CARD",
}



def entity_field_or_account(name: str) -> str:
    """`name` when the graph has vertices for it, else `account_id`. A hit edge can only end at an
    entity: a rule keyed by `currency`, `amount` or `attributes.NAME` draws its edge to the account,
    as an edge whose end value is null does."""
    return name if name in VERTEX_LABELS else "account_id"


#: vertex label -> event field (the inverse of VERTEX_LABELS).
FIELD_OF_LABEL: dict[str, str] = {label: name for name, label in VERTEX_LABELS.items()}

#: The identifier fields two accounts can share (every relationship but the merchant paid).
LINKABLE: tuple[str, ...] = tuple(name for name in RELATIONSHIPS if name != "merchant_id")

#: The identifiers graph rules and views link through unless told otherwise: `ip` is left out,
#: as crowds share it (carrier NAT, offices).
DEFAULT_VIA: tuple[str, ...] = ("email", "phone", "device_id", "card_id")


@lru_cache(maxsize=1 << 16)  # the same times come back (an event's ts, once per graph rule)
def iso_ms(ts: datetime) -> str:
    """Fixed-width ISO-8601 UTC with milliseconds ('2026-11-28T16:45:20.133Z'): sorts as it reads,
    so graph stores compare times as text."""
    if ts.utcoffset() == _ZERO:
        return ts.isoformat(timespec="milliseconds")[:23] + "Z"  # the same text, several times faster
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


class VertexRef(NamedTuple):
    # NamedTuples rather than frozen dataclasses: a batch builds and hashes tens of thousands
    label: str
    key: str


class RelationshipRef(NamedTuple):
    account: str
    label: str
    target: VertexRef


@dataclass
class EntityBatch:
    #: vertex -> first seen within the batch, as iso_ms text
    vertices: dict[VertexRef, str] = field(default_factory=dict)
    #: relationship -> (first seen, last seen) within the batch, as iso_ms text
    relationships: dict[RelationshipRef, tuple[str, str]] = field(default_factory=dict)
    #: event_id -> the relationships that event used: a store counts each event's uses once
    #: (DESIGN.md, "Link strength")
    uses: dict[str, tuple[RelationshipRef, ...]] = field(default_factory=dict)


_LINKS = tuple((name, label, VERTEX_LABELS[name]) for name, label in RELATIONSHIPS.items())
#: an event's values of the _LINKS fields, in that order, in one call
_link_values = attrgetter(*(name for name, _, _ in _LINKS))


#: (label, key) -> first seen; (account, label, target label, target key) -> (first, last) seen
VertexRows = dict[tuple[str, str], str]
RelationshipRows = dict[tuple[str, str, str, str], tuple[str, str]]
#: event_id -> the (account, label, target label, target key) relationships the event used
UseRows = dict[str, tuple[tuple[str, str, str, str], ...]]


def entity_rows(events: Iterable[Transaction]) -> tuple[VertexRows, RelationshipRows, UseRows]:
    """`entities_of` as plain tuples, for stores that write rows (building refs costs more than
    collecting them: a batch repeats most of its entities)."""
    accounts: dict[str, str] = {}
    spans: RelationshipRows = {}
    uses: UseRows = {}
    for event in events:
        seen = iso_ms(event.ts)
        account = event.account_id
        first = accounts.get(account)
        if first is None or seen < first:
            accounts[account] = seen
        used = []
        for (_, label, target_label), value in zip(_LINKS, _link_values(event), strict=True):
            if value is None:
                continue
            key = (account, label, target_label, str(value))
            used.append(key)
            span = spans.get(key)
            if span is None:
                spans[key] = (seen, seen)
            elif seen < span[0]:
                spans[key] = (seen, span[1])
            elif seen > span[1]:
                spans[key] = (span[0], seen)
        uses[event.event_id] = tuple(used)
    # every identifier vertex is a relationship's target: its first sighting is its relationships' first
    vertices: VertexRows = {("Account", account): seen for account, seen in accounts.items()}
    for (_, _, target_label, target_key), (seen, _) in spans.items():
        target = (target_label, target_key)
        first = vertices.get(target)
        if first is None or seen < first:
            vertices[target] = seen
    return vertices, spans, uses


def entities_of(events: Iterable[Transaction]) -> EntityBatch:
    vertices, spans, uses = entity_rows(events)
    return EntityBatch(
        {VertexRef(label, key): seen for (label, key), seen in vertices.items()},
        {RelationshipRef(account, label, VertexRef(target_label, key)): span
         for (account, label, target_label, key), span in spans.items()},
        {event_id: tuple(RelationshipRef(a, label, VertexRef(tl, tk)) for a, label, tl, tk in used)
         for event_id, used in uses.items()})


@dataclass(frozen=True, slots=True)
class HitRef:
    """A hit as macro rules see it (from the graph, or from the batch being judged)."""

    hit_id: str
    rule_id: str
    kind: str
    account_id: str
    ts: str  # iso_ms
    mode: str
    event_id: str

    @classmethod
    def of(cls, hit: Hit) -> HitRef:
        return cls(hit.hit_id, hit.rule_id, hit.kind, hit.account_id, hit.ts, hit.mode, hit.event_id)


@dataclass(frozen=True, slots=True)
class Identifier:
    label: str  # vertex label: Email, Phone, Device...
    key: str
    accounts: tuple[str, ...]
    #: per account (same order): how many of its events used this identifier, and that as a share
    #: of its events with a value in this field (`chalicelib.linkage`, link strength). Empty: not
    #: known (every link counts as used always).
    uses: tuple[int, ...] = ()
    shares: tuple[float, ...] = ()


@dataclass
class Reach:
    """What one account reaches through shared identifiers: account -> hops, and the links."""

    hops: dict[str, int] = field(default_factory=dict)
    identifiers: dict[tuple[str, str], Identifier] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReachQuery:
    """How far to look through shared identifiers: the `via` fields, the account-to-account hops,
    and the most accounts an identifier may have and still be followed (None: no limit)."""

    via: tuple[str, ...]
    max_hops: int
    max_accounts_per_identifier: int | None = None
    #: also read the identifiers of the accounts at the last hop, so the links among them are
    #: known (a component's cohesion needs them): one more bulk read per batch
    closed: bool = False
    #: stop adding accounts to a seed's reach once it has this many (None: no limit)
    max_accounts: int | None = None
    #: follow an account's link to an identifier only if the account used it on at least this
    #: share of its events with that field (one share, or (field, share) pairs), and at least
    #: `min_link_uses` times (link strength: `chalicelib.linkage`)
    min_link_share: float | tuple[tuple[str, float], ...] = 0.0
    min_link_uses: int = 1


@dataclass
class GraphView:
    """What macro rules judge a batch on, read from the graph after the batch's entity writes:
    reach per query and seed account, and recent hits (graph's and this batch's so far)."""

    reach: dict[ReachQuery, dict[str, Reach]] = field(default_factory=dict)
    hits: list[HitRef] = field(default_factory=list)

    @cached_property
    def hits_by_account(self) -> dict[str, list[HitRef]]:
        """`hits` per account, each list in (ts, hit_id) order: rules look up the accounts they
        care about instead of scanning every hit for every event."""
        out: dict[str, list[HitRef]] = {}
        for hit in self.hits:
            out.setdefault(hit.account_id, []).append(hit)
        return out

    @cached_property
    def hits_by_event(self) -> dict[str, list[HitRef]]:
        out: dict[str, list[HitRef]] = {}
        for hit in self.hits:
            out.setdefault(hit.event_id, []).append(hit)
        return out

    def without_events(self, event_ids: Collection[str]) -> GraphView:
        """This view without the hits of these events."""
        if not any(h.event_id in event_ids for h in self.hits):
            return self
        return GraphView(self.reach, [h for h in self.hits if h.event_id not in event_ids])

    def with_hits(self, more: Iterable[HitRef]) -> GraphView:
        merged = {h.hit_id: h for h in self.hits}
        merged.update((h.hit_id, h) for h in more)
        return GraphView(self.reach, sorted(merged.values(), key=lambda h: (h.ts, h.hit_id)))
