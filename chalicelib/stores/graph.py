"""The GraphStore: entity upserts, hit edges, and the queries macro rules and investigators need.

Written once as gremlinpython traversals; a `GraphConnection` runs them on gremlite (embedded) or
Neptune. Only steps both engines support are used: property-keyed `fold().coalesce(unfold(),
addV())` upserts (no mergeV/mergeE, no custom ids), no dedup/groupCount/sum/is/range - that work
is done in Python. Edge ends are named by step labels (`as_` + `to`), which gremlite requires.

Writes are idempotent (upsert by natural key / hit_id) and deduplicated per batch and per warm
container: what this container has written is remembered, so a vertex or relationship costs one
upsert per container lifetime, not one per event. The memory is only updated on commit.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gremlin_python.process.graph_traversal import GraphTraversal, __
from gremlin_python.process.traversal import P

from chalicelib.entities import (
    RELATIONSHIPS,
    VERTEX_LABELS,
    EntityBatch,
    HitRef,
    Identifier,
    Reach,
    ReachQuery,
    RelationshipRef,
    VertexRef,
    entities_of,
)
from chalicelib.events import Transaction
from chalicelib.hits import Hit
from chalicelib.stores.gremlin import GraphConnection

FIELD_OF_LABEL = {label: name for name, label in VERTEX_LABELS.items()}

KEY = "key"  # the vertex property holding the natural id
CHAIN = 5  # upserts chained per traversal: fewer Neptune round trips; gremlite is fastest at ~5 (bench)
WITHIN = 200  # values per P.within
LAST_SEEN_GRANULARITY_MS = 3_600_000  # refresh an edge's last_seen at most hourly
MEMO_LIMIT = 500_000  # remembered writes per container before the memory starts afresh
EVIDENCE_LIMIT = 4000  # characters of JSON evidence kept on a hit edge
HIT_PROPERTIES = ("hit_id", "rule_id", "kind", "mode", "severity", "event_id", "account_id", "ts",
                  "value", "threshold", "ruleset_version")


@dataclass
class Ring:
    accounts: list[str]
    identifiers: list[Identifier]


class GraphStore:
    def __init__(self, connection: GraphConnection, chain: int = CHAIN) -> None:
        self.connection = connection
        self.chain = chain
        self._vertices: set[VertexRef] = set()
        self._relationships: dict[RelationshipRef, str] = {}  # -> last_seen written
        self._hits: set[str] = set()
        # written in the open transaction; remembered for good on commit, forgotten on rollback
        self._staged_vertices: set[VertexRef] = set()
        self._staged_relationships: dict[RelationshipRef, str] = {}
        self._staged_hits: set[str] = set()
        self.writes = 0  # upserts sent (for reports and benchmarks)
        self.write_traversals = 0  # round trips those took

    @property
    def g(self) -> Any:
        return self.connection.g

    # ----------------------------------------------------------------------- writes

    def write_entities(self, events: Iterable[Transaction]) -> int:
        """Upsert the vertices and relationships the events imply; return how many were sent."""
        return self.write_entity_batch(entities_of(events))

    def write_entity_batch(self, batch: EntityBatch) -> int:
        vertices = sorted(v for v in batch.vertices if v not in self._vertices and v not in self._staged_vertices)
        self._run_chained(vertices, lambda t, v: _upsert_vertex(t, v, batch.vertices[v]))
        self._staged_vertices.update(vertices)

        new, stale = [], []
        for ref, (first, last) in sorted(batch.relationships.items()):
            written = self._staged_relationships.get(ref) or self._relationships.get(ref)
            if written is None:
                new.append((ref, first, last))
            elif _ms_apart(written, last) >= LAST_SEEN_GRANULARITY_MS:
                stale.append((ref, first, last))
        self._run_chained(new, lambda t, item, i: _upsert_relationship(t, item, f"r{i}"), numbered=True)
        self._run_chained(stale, lambda t, item: _refresh_last_seen(t, item))
        self._staged_relationships.update((ref, last) for ref, _, last in [*new, *stale])
        return len(vertices) + len(new) + len(stale)

    def write_hits(self, hits: Sequence[Hit]) -> int:
        """One labelled edge per hit, from its `edge.from` entity to its `edge.to` entity."""
        fresh = [h for h in {h.hit_id: h for h in hits}.values()
                 if h.hit_id not in self._hits and h.hit_id not in self._staged_hits]
        ends = {VertexRef(VERTEX_LABELS[end.field], end.value): h.ts
                for h in fresh for end in (h.edge.from_, h.edge.to)}
        self.write_entity_batch(EntityBatch(vertices=ends))
        self._run_chained(fresh, lambda t, hit, i: _upsert_hit(t, hit, f"h{i}"), numbered=True)
        self._staged_hits.update(h.hit_id for h in fresh)
        return len(fresh)

    def commit(self) -> None:
        self.connection.commit()
        if len(self._vertices) + len(self._relationships) + len(self._hits) > MEMO_LIMIT:
            self._vertices.clear()
            self._relationships.clear()
            self._hits.clear()
        self._vertices |= self._staged_vertices
        for ref, last in self._staged_relationships.items():
            self._relationships[ref] = max(last, self._relationships.get(ref, last))
        self._hits |= self._staged_hits
        self._forget_staged()

    def rollback(self) -> None:
        self._forget_staged()
        self.connection.rollback()

    def _forget_staged(self) -> None:
        self._staged_vertices.clear()
        self._staged_relationships.clear()
        self._staged_hits.clear()

    def close(self) -> None:
        self.connection.close()

    def _run_chained(self, items: Sequence[Any], step: Any, numbered: bool = False) -> None:
        for start in range(0, len(items), self.chain):
            traversal: Any = self.g
            for i, item in enumerate(items[start:start + self.chain]):
                traversal = step(traversal, item, i) if numbered else step(traversal, item)
            self.connection.run(traversal, "iterate")
            self.writes += min(self.chain, len(items) - start)
            self.write_traversals += 1

    # ----------------------------------------------------------------------- queries

    def identifiers_of(self, accounts: Iterable[str], via: Sequence[str]) -> dict[str, list[Identifier]]:
        """For each account: the identifiers (of the `via` fields) it has, with every account
        that shares each. One traversal per WITHIN accounts."""
        labels = [RELATIONSHIPS[name] for name in via]
        out: dict[str, list[Identifier]] = {}
        for chunk in _chunks(sorted(set(accounts)), WITHIN):
            rows = self.connection.run(
                self.g.V().has("Account", KEY, P.within(*chunk)).project("a", "ids").by(KEY).by(
                    __.out(*labels).project("l", "k", "accts").by(__.label()).by(KEY)
                    .by(__.in_(*labels).values(KEY).fold()).fold()),
                "list")
            for row in rows:
                out[row["a"]] = [Identifier(i["l"], i["k"], tuple(sorted(set(i["accts"])))) for i in row["ids"]]
        return out

    def reach(self, seeds: Iterable[str], via: Sequence[str], max_hops: int,
              max_accounts_per_identifier: int | None = None) -> dict[str, Reach]:
        """Breadth-first through shared identifiers, level by level for all seeds at once: at most
        `max_hops` rounds of traversals per call, however many seeds. Identifiers shared by more
        than `max_accounts_per_identifier` accounts (offices, carriers) are not followed."""
        return self.reach_many(seeds, [ReachQuery(tuple(via), max_hops, max_accounts_per_identifier)])[
            ReachQuery(tuple(via), max_hops, max_accounts_per_identifier)]

    def reach_many(self, seeds: Iterable[str], queries: Sequence[ReachQuery]) -> dict[ReachQuery, dict[str, Reach]]:
        """`reach` for several queries with one shared walk over the union of their `via` fields
        and their deepest hop count, so a batch costs max(max_hops) rounds of traversals."""
        seeds = sorted(set(seeds))
        if not queries:
            return {}
        via = list(dict.fromkeys(f for q in queries for f in q.via))
        adjacency: dict[str, list[Identifier]] = {}
        frontier = set(seeds)
        for _ in range(max(q.max_hops for q in queries)):
            adjacency.update(self.identifiers_of(frontier - adjacency.keys(), via))
            frontier = {a for acct in frontier for ident in adjacency.get(acct, ())
                        if any(_followed(ident, q) for q in queries) for a in ident.accounts} - adjacency.keys()
        return {q: {seed: _bfs(seed, adjacency, q) for seed in seeds} for q in queries}

    def hits_for_accounts(self, accounts: Iterable[str], since: str) -> list[HitRef]:
        """Hit edges touching these accounts with ts > since (iso_ms), deduplicated by hit_id."""
        found: dict[str, HitRef] = {}
        wanted = set(accounts)
        for chunk in _chunks(sorted(wanted), WITHIN):
            rows = self.connection.run(
                self.g.V().has("Account", KEY, P.within(*chunk)).both_e().has("hit_id").has("ts", P.gt(since))
                .project("hit_id", "rule_id", "kind", "account_id", "ts", "mode", "event_id")
                .by("hit_id").by("rule_id").by("kind").by("account_id").by("ts").by("mode").by("event_id"),
                "list")
            for row in rows:
                if row["account_id"] in wanted:
                    found[row["hit_id"]] = HitRef(**row)
        return sorted(found.values(), key=lambda h: (h.ts, h.hit_id))

    def rings(self, via: Sequence[str], min_size: int = 2,
              max_accounts_per_identifier: int | None = None) -> list[Ring]:
        """Groups of accounts linked through shared identifiers, largest first."""
        labels = [RELATIONSHIPS[name] for name in via]
        rows = self.connection.run(
            self.g.E().has_label(*labels).project("a", "l", "k")
            .by(__.out_v().values(KEY)).by(__.in_v().label()).by(__.in_v().values(KEY)), "list")
        members: dict[tuple[str, str], set[str]] = defaultdict(set)
        for row in rows:
            members[(row["l"], row["k"])].add(row["a"])
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            while parent.setdefault(x, x) != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        shared = {k: v for k, v in members.items() if len(v) > 1
                  and (max_accounts_per_identifier is None or len(v) <= max_accounts_per_identifier)}
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
                links = [Identifier(label, key, tuple(sorted(accts))) for (label, key), accts in shared.items()
                         if accts & accounts]
                links.sort(key=lambda i: (-len(i.accounts), i.label, i.key))
                rings.append(Ring(sorted(accounts), links))
        rings.sort(key=lambda r: (-len(r.accounts), r.accounts[0]))
        return rings

    def account_view(self, account: str, hops: int = 1, max_accounts_per_identifier: int = 50) -> dict[str, Any]:
        """An account's neighbourhood for investigators: its entities, the accounts sharing them
        (up to `hops` account-to-account steps), and every hit edge on those accounts."""
        via = [name for name in RELATIONSHIPS if name != "merchant_id"]
        reach = self.reach([account], via, hops, max_accounts_per_identifier)[account]
        if not reach.hops:
            return {"account": account, "found": False}
        accounts = sorted(reach.hops, key=lambda a: (reach.hops[a], a))
        entity_rows = self.connection.run(
            self.g.V().has("Account", KEY, account).out_e().not_(__.has("hit_id"))
            .project("label", "to_label", "to", "first_seen", "last_seen")
            .by(__.label()).by(__.in_v().label()).by(__.in_v().values(KEY))
            .by(__.values("first_seen").fold()).by(__.values("last_seen").fold()), "list")
        hits = []
        for chunk in _chunks(accounts, WITHIN):
            hits.extend(self.connection.run(
                self.g.V().has("Account", KEY, P.within(*chunk)).out_e().has("hit_id")
                .project("label", "to_label", "to", *HIT_PROPERTIES)
                .by(__.label()).by(__.in_v().label()).by(__.in_v().values(KEY))
                .by("hit_id").by("rule_id").by("kind").by("mode").by("severity").by("event_id")
                .by("account_id").by("ts").by("value").by("threshold").by("ruleset_version"), "list"))
        unique_hits = sorted({h["hit_id"]: h for h in hits}.values(), key=lambda h: (h["ts"], h["hit_id"]))
        return {
            "account": account,
            "found": True,
            "entities": [{"relationship": r["label"], "label": r["to_label"], "key": r["to"],
                          "first_seen": (r["first_seen"] or [None])[0], "last_seen": (r["last_seen"] or [None])[0]}
                         for r in sorted(entity_rows, key=lambda r: (r["label"], r["to"]))],
            "accounts": [{"account": a, "hops": reach.hops[a]} for a in accounts],
            "shared_identifiers": [{"label": i.label, "key": i.key, "accounts": list(i.accounts)}
                                   for i in sorted(reach.identifiers.values(), key=lambda i: (-len(i.accounts), i.key))
                                   if len(i.accounts) > 1],
            "hits": unique_hits,
        }

    def counts(self) -> dict[str, int]:
        return {"vertices": self.connection.run(self.g.V().count(), "list")[0],
                "edges": self.connection.run(self.g.E().count(), "list")[0]}


# --------------------------------------------------------------------------- traversal pieces


def _upsert_vertex(t: Any, vertex: VertexRef, first_seen: str) -> GraphTraversal:
    return t.V().has(vertex.label, KEY, vertex.key).fold().coalesce(
        __.unfold(), __.add_v(vertex.label).property(KEY, vertex.key).property("first_seen", first_seen))


def _upsert_relationship(t: Any, item: tuple[RelationshipRef, str, str], name: str) -> GraphTraversal:
    ref, first, last = item
    return t.V().has(ref.target.label, KEY, ref.target.key).as_(name).V().has("Account", KEY, ref.account).coalesce(
        __.out_e(ref.label).where(__.in_v().as_(name)),
        __.add_e(ref.label).to(name).property("first_seen", first).property("last_seen", last))


def _refresh_last_seen(t: Any, item: tuple[RelationshipRef, str, str]) -> GraphTraversal:
    ref, _, last = item
    return t.V().has("Account", KEY, ref.account).out_e(ref.label).where(
        __.in_v().has(ref.target.label, KEY, ref.target.key)).property("last_seen", last)


def _upsert_hit(t: Any, hit: Hit, name: str) -> GraphTraversal:
    source = VertexRef(VERTEX_LABELS[hit.edge.from_.field], hit.edge.from_.value)
    target = VertexRef(VERTEX_LABELS[hit.edge.to.field], hit.edge.to.value)
    create = __.add_e(hit.edge.label).to(name)
    for prop in HIT_PROPERTIES:
        value = getattr(hit, prop)
        create = create.property(prop, float(value) if prop in ("value", "threshold") else value)
    evidence = json.dumps(hit.evidence, default=str, separators=(",", ":"))[:EVIDENCE_LIMIT]
    create = create.property("evidence", evidence)
    return t.V().has(target.label, KEY, target.key).as_(name).V().has(source.label, KEY, source.key).coalesce(
        __.out_e(hit.edge.label).has("hit_id", hit.hit_id), create)


def _followed(ident: Identifier, query: ReachQuery) -> bool:
    limit = query.max_accounts_per_identifier
    return FIELD_OF_LABEL[ident.label] in query.via and (limit is None or len(ident.accounts) <= limit)


def _bfs(seed: str, adjacency: dict[str, list[Identifier]], query: ReachQuery) -> Reach:
    if seed not in adjacency:
        return Reach()
    reach = Reach(hops={seed: 0})
    frontier = [seed]
    for hop in range(1, query.max_hops + 1):
        nxt = []
        for account in frontier:
            for ident in adjacency.get(account, ()):
                if not _followed(ident, query):
                    continue
                reach.identifiers[(ident.label, ident.key)] = ident
                for other in ident.accounts:
                    if other not in reach.hops:
                        reach.hops[other] = hop
                        nxt.append(other)
        frontier = nxt
    return reach


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _ms_apart(earlier: str, later: str) -> int:
    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return int((parse(later) - parse(earlier)).total_seconds() * 1000)


__all__ = ["GraphStore", "HitRef", "Identifier", "Reach", "Ring"]
