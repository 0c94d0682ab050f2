"""The GraphStore interface: what the pipeline, the macro rules and investigators ask of the graph.

A backend implements the writes (idempotent upserts of vertices, relationships and hit edges,
committed or rolled back per batch) and a few bulk reads; the walks built on those reads - reach
through shared identifiers, a batch's neighbourhood, rings, an account's view - live here, once,
so every backend answers them the same way and with a bounded number of reads (one per hop).

Timestamps: a vertex's `first_seen` is the minimum, a relationship's `first_seen` the minimum and
its `last_seen` the maximum of what any writer wrote - whatever the order of writes, restarts,
redeliveries or concurrent writers. A backend may coarsen `last_seen` to a stated granularity
(`last_seen_granularity_ms`, to save Neptune requests); it is then never more than that behind.

Size: one module because the interface and the walks built on its reads are read together;
moving the walks away would separate each read from its only callers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from operator import attrgetter
from typing import Any, ClassVar, NotRequired, TypedDict

from chalicelib.entities import (
    FIELD_OF_LABEL,
    LINKABLE,
    VERTEX_LABELS,
    EntityBatch,
    GraphView,
    HitRef,
    Identifier,
    Reach,
    ReachQuery,
    RelationshipRef,
    VertexRef,
    entities_of,
)
from chalicelib.events import Transaction
from chalicelib.hits import EdgeEnd, Hit, HitEdge
from chalicelib.linkage import (
    DEFAULT_CROWD,
    DEFAULT_KIND_WEIGHTS,
    score_component,
    share_floor,
    strong,
    strong_at,
)

EVIDENCE_LIMIT = 4000  # characters of JSON evidence kept on a hit edge
HIT_PROPERTIES = ("hit_id", "rule_id", "kind", "mode", "severity", "event_id", "account_id", "ts",
                  "value", "threshold", "ruleset_version")


@dataclass
class Ring:
    accounts: list[str]
    identifiers: list[Identifier]
    #: linkage evidence and cohesion (chalicelib.linkage) under the weights `rings` was given
    evidence: float = 0.0
    cohesion: float = 0.0


#: hits a default aggregate (`hit_counts`, `top_accounts`) reads at most, page by page
AGGREGATE_SCAN_LIMIT = 100_000


@dataclass(frozen=True)
class HitFilter:
    """Which hit edges an investigator asks for; every field optional. Times are iso_ms text
    (`since` inclusive, `until` exclusive). `before` is a keyset cursor: only hits ordered after
    that (ts, hit_id) in the newest-first order, i.e. `(ts, hit_id) < before`."""

    rule_id: str | None = None
    account_id: str | None = None
    mode: str | None = None
    since: str | None = None
    until: str | None = None
    before: tuple[str, str] | None = None

    def matches(self, hit: dict[str, Any]) -> bool:
        """The same filter in Python (for backends that scan, and for tests)."""
        return ((self.rule_id is None or hit["rule_id"] == self.rule_id)
                and (self.account_id is None or hit["account_id"] == self.account_id)
                and (self.mode is None or hit["mode"] == self.mode)
                and (self.since is None or hit["ts"] >= self.since)
                and (self.until is None or hit["ts"] < self.until)
                and (self.before is None or (hit["ts"], hit["hit_id"]) < self.before))


class GraphStore(ABC):
    """Entity vertices, Account -[relationship]-> identifier edges, and one edge per hit."""

    #: how far a relationship's stored last_seen may lag the true maximum (0: exact)
    last_seen_granularity_ms: int = 0
    #: the backend's name in settings (GRAPH_BACKEND) and reports
    backend: ClassVar[str] = ""

    # ----------------------------------------------------------------------- writes

    def write_entities(self, events: Iterable[Transaction]) -> int:
        """Upsert the vertices and relationships the events imply; return how many were sent."""
        return self.write_entity_batch(entities_of(events))

    @abstractmethod
    def write_entity_batch(self, batch: EntityBatch) -> int:
        """Upsert vertices (first_seen = min) and relationships (first_seen = min, last_seen = max)."""

    @abstractmethod
    def write_hits(self, hits: Sequence[Hit]) -> int:
        """One labelled edge per hit (`edge.from` -> `edge.to`), idempotent by hit_id; the end
        vertices are created when missing. Returns how many hits were sent."""

    @abstractmethod
    def commit(self) -> None:
        """Make the batch's writes durable."""

    @abstractmethod
    def rollback(self) -> None:
        """Forget the batch's uncommitted writes (where the backend can)."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections."""

    # ----------------------------------------------------------------------- bulk reads

    @abstractmethod
    def identifiers_of(self, accounts: Iterable[str], via: Sequence[str]) -> dict[str, list[Identifier]]:
        """For each account in the graph (an Account vertex): its identifiers of the `via` fields
        (maybe none), each with every account that has it and each such account's uses and share
        (`Identifier.uses`, `.shares`). Accounts not in the graph are absent.
        One bulk read (a few for very many accounts)."""

    @abstractmethod
    def hits_for_accounts(self, accounts: Iterable[str], since: str) -> list[HitRef]:
        """Hit edges of these accounts (hit.account_id) with ts > since (iso_ms), one per hit_id,
        ordered by (ts, hit_id)."""

    @abstractmethod
    def identifier_members(self, via: Sequence[str]) -> dict[tuple[str, str], Identifier]:
        """Every identifier of the `via` fields -> it, with the accounts that have it and their
        uses and shares (whole graph)."""

    @abstractmethod
    def relationships_of(self, account: str) -> list[dict[str, Any]]:
        """The account's relationship edges: relationship, label, key, first_seen, last_seen."""

    @abstractmethod
    def hit_edges_of(self, accounts: Sequence[str]) -> list[dict[str, Any]]:
        """Hit edges leaving these accounts' vertices, with label, to_label, to and HIT_PROPERTIES."""

    @abstractmethod
    def find_hits(self, where: HitFilter, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` hit edges matching `where`, newest first (ts, then hit_id, descending),
        each with label, from_label, from, to_label, to, HIT_PROPERTIES and evidence (a dict).
        Read-only; what the investigator's API lists hits from (in AWS hits go to the log, and
        the graph holds every hit with its fields)."""

    def hit_counts(self, where: HitFilter, bucket_ms: int) -> dict[tuple[int, str], int]:
        """(bucket start in epoch ms, rule_id) -> number of matching hits. This default pages
        through `find_hits` (at most AGGREGATE_SCAN_LIMIT hits); backends may aggregate in place."""
        counts: dict[tuple[int, str], int] = defaultdict(int)
        for hit in self._scan_hits(where):
            counts[(_epoch_ms(hit["ts"]) // bucket_ms * bucket_ms, hit["rule_id"])] += 1
        return dict(counts)

    def top_accounts(self, where: HitFilter, limit: int) -> list[dict[str, Any]]:
        """The accounts with the most matching hits: account_id, hits, rules (distinct), last_ts;
        most hits first. Default built on `find_hits` like `hit_counts`."""
        per: dict[str, dict[str, Any]] = {}
        for hit in self._scan_hits(where):
            row = per.setdefault(hit["account_id"], {"account_id": hit["account_id"], "hits": 0, "rules": set(),
                                                     "last_ts": hit["ts"]})
            row["hits"] += 1
            row["rules"].add(hit["rule_id"])
            row["last_ts"] = max(row["last_ts"], hit["ts"])
        rows = [{**r, "rules": len(r["rules"])} for r in per.values()]
        rows.sort(key=lambda r: (-r["hits"], r["account_id"]))
        return rows[:limit]

    def _scan_hits(self, where: HitFilter) -> Iterable[dict[str, Any]]:
        page_size, seen, cursor = 1000, 0, where
        while seen < AGGREGATE_SCAN_LIMIT:
            page = self.find_hits(cursor, page_size)
            yield from page
            seen += len(page)
            if len(page) < page_size:
                return
            cursor = replace(cursor, before=(page[-1]["ts"], page[-1]["hit_id"]))

    @abstractmethod
    def vertex_times(self) -> dict[VertexRef, str]:
        """Every vertex with its stored first_seen - for audits and tests."""

    @abstractmethod
    def relationship_times(self) -> dict[RelationshipRef, tuple[str, str]]:
        """Every relationship with its stored (first_seen, last_seen) - for audits and tests."""

    @abstractmethod
    def relationship_uses(self) -> dict[RelationshipRef, int]:
        """Every relationship with its use count: the number of distinct events (by event_id)
        that used it, exact under redelivery and concurrent writers - for audits and tests."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """{"vertices": n, "edges": m} (relationship and hit edges)."""

    # ----------------------------------------------------------------------- walks

    def reach(self, seeds: Iterable[str], via: Sequence[str], max_hops: int,
              max_accounts_per_identifier: int | None = None) -> dict[str, Reach]:
        """Breadth-first through shared identifiers (see `reach_many`)."""
        query = ReachQuery(tuple(via), max_hops, max_accounts_per_identifier)
        return self.reach_many(seeds, [query])[query]

    def reach_many(self, seeds: Iterable[str], queries: Sequence[ReachQuery]) -> dict[ReachQuery, dict[str, Reach]]:
        """Reach per query and seed with one shared walk, level by level for all seeds at once,
        over the union of the queries' `via` fields: max(max_hops) bulk reads per call (one more
        when a query is `closed`), however many seeds. Identifiers shared by more than a query's
        `max_accounts_per_identifier` accounts (offices, carriers) are not followed by that query;
        a seed's reach stops growing at the query's `max_accounts`, so a read's frontier is at most
        seeds x max_accounts accounts."""
        seeds = sorted(set(seeds))
        if not queries:
            return {}
        via = list(dict.fromkeys(f for q in queries for f in q.via))
        adjacency = _Adjacency()  # known accounts only
        follows = {q: _Follow(q) for q in queries}
        walks = {q: {seed: _Walk(seed, q, follows[q]) for seed in seeds} for q in queries}
        asked: set[str] = set()
        for hop in range(1, max(q.max_hops for q in queries) + 1):
            live = [w for per in walks.values() for w in per.values() if w.query.max_hops >= hop and w.frontier]
            wanted = {a for w in live for a in w.frontier} - asked
            if wanted:
                adjacency.add(self.identifiers_of(wanted, via))
                asked |= wanted
            for walk in live:
                walk.step(hop, adjacency)
        closing = [w for per in walks.values() for w in per.values() if w.query.closed]
        wanted = {a for w in closing for a in w.frontier} - asked
        if wanted:
            adjacency.add(self.identifiers_of(wanted, via))
        for walk in closing:
            walk.close(adjacency)
        return {q: {seed: walk.reach for seed, walk in per.items()} for q, per in walks.items()}

    def neighbourhood(self, accounts: Iterable[str], queries: Sequence[ReachQuery],
                      hits_since: str | None) -> GraphView:
        """What a batch's macro rules judge on: reach per query from the batch's accounts, and
        the hits since `hits_since` of every account reached. max(hops) + 1 bulk reads."""
        reach = self.reach_many(accounts, queries)
        found: list[HitRef] = []
        if hits_since is not None:
            involved = set(accounts)
            for per_seed in reach.values():
                for seed_reach in per_seed.values():
                    involved.update(seed_reach.hops)
            found = self.hits_for_accounts(involved, hits_since)
        return GraphView(reach, found)

    def rings(self, via: Sequence[str], min_size: int = 2, max_accounts_per_identifier: int | None = None,
              *, rank: str = "size", kind_weights: Mapping[str, float] | None = None,
              crowd: int = DEFAULT_CROWD, min_link_share: float | Mapping[str, float] = 0.0,
              min_link_uses: int = 1) -> list[Ring]:
        """Groups of accounts linked through shared identifiers (connected components of the
        links at least `min_link_share` and `min_link_uses` strong: `chalicelib.linkage.strong`;
        investigators' views pass `linkage.DEFAULT_LINK_SHARES`), each scored by `chalicelib.linkage`;
        `rank="cohesion"`: by evidence x cohesion, so a tree of chance collisions ranks below a
        tightly linked group (what `graph rings` and the API show); `rank="size"`: largest first.
        Identifiers of more than `max_accounts_per_identifier` accounts (strong or not) are left
        out. One whole-graph read."""
        identifiers = {k: strong(i, min_link_share, min_link_uses) for k, i in self.identifier_members(via).items()
                       if max_accounts_per_identifier is None or len(i.accounts) <= max_accounts_per_identifier}
        members = {k: set(i.accounts) for k, i in identifiers.items()}
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            while parent.setdefault(x, x) != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        shared = {k: v for k, v in members.items() if len(v) > 1}
        for accounts in shared.values():
            first, *rest = sorted(accounts)
            for other in rest:
                parent[find(other)] = find(first)
        groups: dict[str, set[str]] = defaultdict(set)
        for accounts in shared.values():
            for account in accounts:
                groups[find(account)].add(account)
        rings = []
        for accounts in groups.values():
            if len(accounts) >= min_size:
                links = [identifiers[k] for k, accts in shared.items() if accts & accounts]
                links.sort(key=lambda i: (-len(i.accounts), i.label, i.key))
                score = score_component(accounts, links, kind_weights or DEFAULT_KIND_WEIGHTS, crowd)
                rings.append(Ring(sorted(accounts), links, score.evidence, score.cohesion))
        if rank == "cohesion":
            rings.sort(key=lambda r: (-r.evidence * r.cohesion, -len(r.accounts), r.accounts[0]))
        elif rank == "size":
            rings.sort(key=lambda r: (-len(r.accounts), r.accounts[0]))
        else:
            raise ValueError(f"rank must be 'size' or 'cohesion', not {rank!r}")
        return rings

    def account_view(self, account: str, hops: int = 1, max_accounts_per_identifier: int = 50) -> AccountView:
        """An account's neighbourhood for investigators: its entities, the accounts sharing them
        (up to `hops` account-to-account steps), and every hit edge on those accounts."""
        via = list(LINKABLE)
        reach = self.reach([account], via, hops, max_accounts_per_identifier)[account]
        if not reach.hops:
            return {"account": account, "found": False}
        accounts = sorted(reach.hops, key=lambda a: (reach.hops[a], a))
        hits = self.hit_edges_of(accounts)
        unique_hits = sorted({h["hit_id"]: h for h in hits}.values(), key=lambda h: (h["ts"], h["hit_id"]))
        return {
            "account": account,
            "found": True,
            "entities": sorted(self.relationships_of(account), key=lambda r: (r["relationship"], r["key"])),
            "accounts": [{"account": a, "hops": reach.hops[a]} for a in accounts],
            "shared_identifiers": [{"label": i.label, "key": i.key, "accounts": list(i.accounts)}
                                   for i in sorted(reach.identifiers.values(), key=lambda i: (-len(i.accounts), i.key))
                                   if len(i.accounts) > 1],
            "hits": unique_hits,
        }


class ReachedAccount(TypedDict):
    account: str
    hops: int  # account-to-account steps from the viewed account (0: itself)


class SharedIdentifier(TypedDict):
    label: str
    key: str
    accounts: list[str]


class AccountView(TypedDict):
    """An account's neighbourhood for investigators (`GraphStore.account_view`); only `account`
    and `found` when the account is not in the graph."""

    account: str
    found: bool
    entities: NotRequired[list[dict[str, Any]]]  # `relationships_of` rows
    accounts: NotRequired[list[ReachedAccount]]
    shared_identifiers: NotRequired[list[SharedIdentifier]]
    hits: NotRequired[list[dict[str, Any]]]  # `hit_edges_of` rows, each hit once, by time


def _epoch_ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


class _Follow:
    """How one query follows identifiers: not at all (another field, or too crowded), or with
    their strong members only (`linkage.strong`), with the query's per-label share floors worked
    out once rather than once per identifier met."""

    def __init__(self, query: ReachQuery) -> None:
        self.labels = frozenset(VERTEX_LABELS[name] for name in query.via if name in VERTEX_LABELS)
        self.limit = query.max_accounts_per_identifier
        self.floors = {label: share_floor(query.min_link_share, label) for label in self.labels}
        self.min_uses = query.min_link_uses

    def links(self, account: str, identifiers: Iterable[Identifier]) -> list[Identifier]:
        """Of `account`'s identifiers, those this query follows and on which the account's own
        link is strong, each with its strong members only. (One call per account a walk passes,
        not one per identifier: a batch's walks meet hundreds of thousands.)"""
        labels, limit, floors, min_uses = self.labels, self.limit, self.floors, self.min_uses
        out = []
        for found in identifiers:
            if found.label in labels and (limit is None or len(found.accounts) <= limit):
                if len(found.accounts) == 1 and found.shares:  # most: `strong_at` keeps it whole or drops it
                    floor = floors[found.label]
                    strong_link = (found.shares[0] >= floor and found.uses[0] >= min_uses) or (
                        floor <= 0 and min_uses <= 1)
                    if strong_link and found.accounts[0] == account:
                        out.append(found)
                    continue
                ident = strong_at(found, floors[found.label], min_uses)
                if account in ident.accounts:
                    out.append(ident)
        return out


_LABEL_AND_KEY = attrgetter("label", "key")


class _Adjacency:
    """What one `reach_many` call read: each known account's identifiers, as read and in (label,
    key) order (sorted once per call, not once per walk that passes by)."""

    def __init__(self) -> None:
        self.read: dict[str, list[Identifier]] = {}
        self._ordered: dict[str, list[Identifier]] = {}

    def add(self, found: Mapping[str, list[Identifier]]) -> None:
        for account, identifiers in found.items():
            self.read[account] = identifiers
            self._ordered.pop(account, None)

    def __contains__(self, account: str) -> bool:
        return account in self.read

    def ordered(self, account: str) -> list[Identifier]:
        out = self._ordered.get(account)
        if out is None:
            out = self._ordered[account] = sorted(self.read.get(account, ()), key=_LABEL_AND_KEY)
        return out


class _Walk:
    """One seed's breadth-first walk for one query, a level at a time."""

    def __init__(self, seed: str, query: ReachQuery, follow: _Follow) -> None:
        self.query = query
        self.follow = follow
        self.reach = Reach()
        self.seed = seed
        self.frontier: list[str] = [seed]

    def step(self, hop: int, adjacency: _Adjacency) -> None:
        if hop == 1:
            if self.seed not in adjacency:
                self.frontier = []
                return
            self.reach.hops[self.seed] = 0
        limit = self.query.max_accounts
        hops = self.reach.hops
        identifiers = self.reach.identifiers
        nxt: list[str] = []
        for account in self.frontier:
            for ident in self.follow.links(account, adjacency.ordered(account)):
                identifiers[(ident.label, ident.key)] = ident
                for other in ident.accounts:
                    if other not in hops and (limit is None or len(hops) < limit):
                        hops[other] = hop
                        nxt.append(other)
        self.frontier = nxt

    def close(self, adjacency: _Adjacency) -> None:
        """Add the followed identifiers of the last hop's accounts (links among them)."""
        for account in self.frontier:
            for ident in self.follow.links(account, adjacency.read.get(account, ())):
                self.reach.identifiers[(ident.label, ident.key)] = ident
        self.frontier = []


def hit_of_edge_row(row: Mapping[str, Any]) -> Hit:
    """A hit as its graph edge keeps it (`hits_of` rows): the edge has no key or key value, so
    those are left empty; enough for an answer or an explanation (value, threshold, evidence)."""
    return Hit(hit_id=row["hit_id"], rule_id=row["rule_id"], kind=row["kind"], mode=row["mode"],
               severity=row["severity"], event_id=row["event_id"], ts=row["ts"], account_id=row["account_id"],
               key="", key_value="", value=row["value"], threshold=row["threshold"],
               ruleset_version=row["ruleset_version"],
               edge=HitEdge(row["label"], EdgeEnd(FIELD_OF_LABEL[row["from_label"]], row["from"]),
                            EdgeEnd(FIELD_OF_LABEL[row["to_label"]], row["to"])),
               evidence=row.get("evidence") or {})
