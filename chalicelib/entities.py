"""The entity graph's model: which event fields become vertices and which relationships link them.

Pure: turns a batch of transactions into the set of vertices and relationship edges it implies,
deduplicated within the batch, with first/last seen times. The GraphStore writes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from chalicelib.events import Transaction
from chalicelib.hits import Hit

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


def iso_ms(ts: datetime) -> str:
    """Fixed-width ISO-8601 UTC with milliseconds ('2026-11-28T16:45:20.133Z'): sorts as it reads,
    so graph stores compare times as text."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True, order=True)
class VertexRef:
    label: str
    key: str


@dataclass(frozen=True, slots=True, order=True)
class RelationshipRef:
    account: str
    label: str
    target: VertexRef


@dataclass
class EntityBatch:
    #: vertex -> first seen within the batch, as iso_ms text
    vertices: dict[VertexRef, str] = field(default_factory=dict)
    #: relationship -> (first seen, last seen) within the batch, as iso_ms text
    relationships: dict[RelationshipRef, tuple[str, str]] = field(default_factory=dict)


def entities_of(events: Iterable[Transaction]) -> EntityBatch:
    batch = EntityBatch()
    for event in events:
        seen = iso_ms(event.ts)
        _first(batch.vertices, VertexRef("Account", event.account_id), seen)
        for name, label in RELATIONSHIPS.items():
            value = event.get(name)
            if value is None:
                continue
            target = VertexRef(VERTEX_LABELS[name], str(value))
            _first(batch.vertices, target, seen)
            ref = RelationshipRef(event.account_id, label, target)
            first, last = batch.relationships.get(ref, (seen, seen))
            batch.relationships[ref] = (min(first, seen), max(last, seen))
    return batch


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


@dataclass
class GraphView:
    """What macro rules judge a batch on, read from the graph after the batch's entity writes:
    reach per query and seed account, and recent hits (graph's and this batch's so far)."""

    reach: dict[ReachQuery, dict[str, Reach]] = field(default_factory=dict)
    hits: list[HitRef] = field(default_factory=list)

    def with_hits(self, more: Iterable[HitRef]) -> GraphView:
        merged = {h.hit_id: h for h in self.hits}
        merged.update((h.hit_id, h) for h in more)
        return GraphView(self.reach, sorted(merged.values(), key=lambda h: (h.ts, h.hit_id)))


def _first(seen_at: dict[VertexRef, str], vertex: VertexRef, ts: str) -> None:
    if vertex not in seen_at or ts < seen_at[vertex]:
        seen_at[vertex] = ts
