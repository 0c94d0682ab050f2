"""The Gremlin GraphStore: the graph as gremlinpython traversals on gremlite (embedded) or Neptune.

Two write forms, chosen by `write_form`:

* `merge` (Neptune engine 1.2.1.0+, TinkerPop 3.6.2+): rows are sent as data, ~200 per request,
  through `inject(rows).unfold().mergeV()/mergeE()`, so a batch costs a handful of requests.
  Vertices and edges get natural-key ids (`Label:key`; a relationship's id is the JSON of its
  four parts; a hit edge's is `hit:<hit_id>`), which makes every write an idempotent match-or-create
  on the id, and makes two concurrent creators of one element collide (Neptune answers one with
  ConcurrentModificationException; the whole request is retried) instead of duplicating it.
  The min/max timestamp rule runs after the merge, inside the same request, from the row:

      .sideEffect(where(gt('first')).by('first_seen').by().property('first_seen', select('first')))
      .sideEffect(where(lt('last')).by('last_seen').by().property('last_seen', select('last')))

* `coalesce` (gremlite, or a Gremlin engine without the merge steps): property-keyed
  `fold().coalesce(unfold(), addV())` upserts, a few chained per request, then the same min/max
  side effects with constants (`has('first_seen', gt(first)).property('first_seen', first)`).

Only steps both gremlite and Neptune support are used on the read side: `has(... within)`,
`project`, `fold`; dedup/grouping is done in Python. Reads take one request per 1,000 accounts,
so a batch's walk costs one request per hop.

Use counts (DESIGN.md, "Link strength"): each event counted is recorded as a `CountedEvent`
vertex (key: event_id) in the same transaction that raises its relationships' `use_count`; a
batch reads which of its events are already counted and the counts it is about to raise, then
writes the new counts, under the write lock on gremlite (`begin()`), so a redelivery or a
concurrent writer cannot count an event twice. On Neptune the read and the write are separate
requests, and counting would cost a write per relationship per batch, which the merge form and
`last_seen_granularity_ms` exist to avoid: so counts are kept in the coalesce form with exact
last_seen only (`count_uses`), and elsewhere every link reads as used once.

Writes are remembered per warm container (only after commit): a vertex, relationship or hit
already written with timestamps that cover the new ones is not sent again. With
`last_seen_granularity_ms` > 0 a relationship's last_seen is refreshed only when it moved by a
threshold between half that and all of it (the Neptune default: an hour), so a warm batch sends
only what is new and the stored last_seen is never more than the granularity behind.

Size: both write forms live here because they share the element ids, the reads and the
batch bookkeeping; what differs is a few traversal builders.
"""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Literal

from gremlin_python.process.graph_traversal import GraphTraversal, __
from gremlin_python.process.traversal import Cardinality, Direction, Merge, Order, P, T

from chalicelib.entities import (
    RELATIONSHIPS,
    VERTEX_LABELS,
    EntityBatch,
    HitRef,
    Identifier,
    RelationshipRef,
    VertexRef,
)
from chalicelib.hits import Hit
from chalicelib.linkage import link_share
from chalicelib.stores.graph_base import EVIDENCE_LIMIT, HIT_PROPERTIES, GraphStore, HitFilter, Ring
from chalicelib.stores.gremlin_connection import GraphConnection

WriteForm = Literal["merge", "coalesce"]
WRITE_FORMS: tuple[WriteForm, ...] = ("merge", "coalesce")

KEY = "key"  # the vertex property holding the natural id
COUNTED = "CountedEvent"  # the label of the vertices recording which events' uses are counted
CHAIN = 5  # coalesce upserts chained per traversal: gremlite is fastest at ~5 (bench)
MERGE_ROWS = 200  # rows per mergeV/mergeE request (Neptune's guidance: ~100-200 records per request)
READ_CHUNK = 1000  # account keys per read request (one request per hop for a 1,000-event batch)
MEMO_LIMIT = 500_000  # remembered writes per container before the memory starts afresh
NEPTUNE_LAST_SEEN_GRANULARITY_MS = 3_600_000


class GremlinGraphStore(GraphStore):
    backend = "gremlin"

    def __init__(self, connection: GraphConnection, *, write_form: WriteForm = "coalesce", chain: int = CHAIN,
                 merge_rows: int = MERGE_ROWS, last_seen_granularity_ms: int = 0) -> None:
        if write_form not in WRITE_FORMS:
            raise ValueError(f"write_form must be one of {WRITE_FORMS}, not {write_form!r}")
        self.connection = connection
        self.write_form = write_form
        self.chain = chain
        self.merge_rows = merge_rows
        self.last_seen_granularity_ms = last_seen_granularity_ms
        #: keep use counts (coalesce form, exact last_seen): a count needs a write per batch that
        #: uses a relationship, which the merge form's request budget and a last_seen granularity
        #: exist to avoid; without counts every link reads as used once
        self.count_uses = write_form == "coalesce" and last_seen_granularity_ms == 0
        # committed: what the graph is known to hold at least (first_seen upper bound, last_seen lower bound)
        self._vertices: dict[VertexRef, str] = {}
        self._relationships: dict[RelationshipRef, tuple[str, str]] = {}
        self._hits: set[str] = set()
        # written in the open batch; remembered for good on commit, forgotten on rollback
        self._staged_vertices: dict[VertexRef, str] = {}
        self._staged_relationships: dict[RelationshipRef, tuple[str, str]] = {}
        self._staged_hits: set[str] = set()
        self.writes = 0  # elements sent (for reports and benchmarks)
        self.write_traversals = 0  # write requests those took

    @property
    def g(self) -> Any:
        return self.connection.g

    # ----------------------------------------------------------------------- writes

    def write_entity_batch(self, batch: EntityBatch) -> int:
        self.connection.begin()
        uses, counted = self._new_use_counts(batch) if self.count_uses else ({}, [])
        vertices = sorted((v, first) for v, first in batch.vertices.items() if not self._vertex_known(v, first))
        relationships = sorted((ref, first, last, uses.get(ref)) for ref, (first, last) in batch.relationships.items()
                               if ref in uses or not self._relationship_known(ref, first, last))
        if self.write_form == "merge":
            self._send_packed([_vertex_row(v, first) for v, first in vertices],
                              [_relationship_row(*item) for item in relationships], _merge_relationships)
        else:
            self._run_chained(vertices, lambda t, item, _: _upsert_vertex(t, *item))
            self._run_chained(relationships, lambda t, item, i: _upsert_relationship(t, item, f"r{i}"))
        self._run_chained(counted, lambda t, event_id, _: _count_event(t, event_id))
        for v, first in vertices:
            self._staged_vertices[v] = min(first, self._staged_vertices.get(v, first))
        for ref, first, last, _ in relationships:
            staged_first, staged_last = self._staged_relationships.get(ref, (first, last))
            self._staged_relationships[ref] = (min(first, staged_first), max(last, staged_last))
        return len(vertices) + len(relationships)

    def _new_use_counts(self, batch: EntityBatch) -> tuple[dict[RelationshipRef, int], list[str]]:
        """The new values of the use counts the batch's events not yet counted raise, and those
        events (two reads, inside the batch's transaction)."""
        events = sorted(e for e, used in batch.uses.items() if used)
        counted: set[str] = set()
        for chunk in _chunks(events, READ_CHUNK):
            counted.update(self.connection.run(self.g.V().has(COUNTED, KEY, P.within(*chunk)).values(KEY), "list"))
        fresh = [e for e in events if e not in counted]
        added: dict[RelationshipRef, int] = defaultdict(int)
        for event_id in fresh:
            for ref in batch.uses[event_id]:
                added[ref] += 1
        if not added:
            return {}, fresh
        current = self._stored_uses({ref.account for ref in added})
        return {ref: current.get(ref, 0) + n for ref, n in added.items()}, fresh

    def _stored_uses(self, accounts: Iterable[str]) -> dict[RelationshipRef, int]:
        out: dict[RelationshipRef, int] = {}
        for chunk in _chunks(sorted(accounts), READ_CHUNK):
            rows = self.connection.run(
                self.g.V().has("Account", KEY, P.within(*chunk)).out_e(*RELATIONSHIPS.values())
                .project("a", "l", "tl", "t", "u").by(__.out_v().values(KEY)).by(__.label()).by(__.in_v().label())
                .by(__.in_v().values(KEY)).by(__.values("use_count").fold()), "list")
            for r in rows:
                out[RelationshipRef(r["a"], r["l"], VertexRef(r["tl"], r["t"]))] = _use_count(r["u"])
        return out

    def write_hits(self, hits: Sequence[Hit]) -> int:
        fresh = [h for h in {h.hit_id: h for h in hits}.values()
                 if h.hit_id not in self._hits and h.hit_id not in self._staged_hits]
        ends: dict[VertexRef, str] = {}
        for hit in fresh:
            for end in (hit.edge.from_, hit.edge.to):
                ref = VertexRef(VERTEX_LABELS[end.field], end.value)
                ends[ref] = min(hit.ts, ends.get(ref, hit.ts))
        if self.write_form == "merge":
            new_ends = sorted((v, first) for v, first in ends.items() if not self._vertex_known(v, first))
            self.connection.begin()
            self._send_packed([_vertex_row(v, first) for v, first in new_ends], [_hit_row(h) for h in fresh],
                              _merge_hits)
            for v, first in new_ends:
                self._staged_vertices[v] = min(first, self._staged_vertices.get(v, first))
        else:
            self.write_entity_batch(EntityBatch(vertices=ends))
            self._run_chained(fresh, lambda t, hit, i: _upsert_hit(t, hit, f"h{i}"))
        self._staged_hits.update(h.hit_id for h in fresh)
        return len(fresh)

    def commit(self) -> None:
        self.connection.commit()
        if len(self._vertices) + len(self._relationships) + len(self._hits) > MEMO_LIMIT:
            self._vertices.clear()
            self._relationships.clear()
            self._hits.clear()
        for v, first in self._staged_vertices.items():
            self._vertices[v] = min(first, self._vertices.get(v, first))
        for ref, (first, last) in self._staged_relationships.items():
            known_first, known_last = self._relationships.get(ref, (first, last))
            self._relationships[ref] = (min(first, known_first), max(last, known_last))
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

    def _vertex_known(self, vertex: VertexRef, first: str) -> bool:
        known = [f for f in (self._staged_vertices.get(vertex), self._vertices.get(vertex)) if f is not None]
        return bool(known) and min(known) <= first

    def _relationship_known(self, ref: RelationshipRef, first: str, last: str) -> bool:
        known = [k for k in (self._staged_relationships.get(ref), self._relationships.get(ref)) if k is not None]
        if not known or first < min(k[0] for k in known):
            return False
        known_last = max(k[1] for k in known)
        return last <= known_last or _ms_apart(known_last, last) < self._refresh_after(ref)

    def _refresh_after(self, ref: RelationshipRef) -> int:
        """How far last_seen may move before it is written again: between half the granularity
        and all of it, fixed per relationship, so relationships first seen together do not all
        fall due in the same batch."""
        granularity = self.last_seen_granularity_ms
        if granularity <= 0:
            return 0
        return granularity - zlib.crc32(relationship_id(ref).encode()) % (granularity // 2 + 1)

    def _run_chained(self, items: Sequence[Any], step: Any) -> None:
        for start in range(0, len(items), self.chain):
            traversal: Any = self.g
            for i, item in enumerate(items[start:start + self.chain]):
                traversal = step(traversal, item, i)
            self.connection.run(traversal, "iterate")
            self.writes += min(self.chain, len(items) - start)
            self.write_traversals += 1

    def _send_packed(self, vertex_rows: list[dict[str, Any]], edge_rows: list[dict[str, Any]],
                     merge_edges: Any) -> None:
        """Vertices, then edges, `merge_rows` rows per request: a request holding both merges its
        vertices, then (after the `fold()` barrier) its edges, so an edge's ends always exist."""
        rows = [(True, r) for r in vertex_rows] + [(False, r) for r in edge_rows]
        for start in range(0, len(rows), self.merge_rows):
            chunk = rows[start:start + self.merge_rows]
            vertices = [r for is_vertex, r in chunk if is_vertex]
            edges = [r for is_vertex, r in chunk if not is_vertex]
            if vertices and edges:
                traversal = merge_edges(_merge_vertices(self.g.inject(vertices).unfold()).fold()
                                        .constant(edges).unfold())
            elif vertices:
                traversal = _merge_vertices(self.g.inject(vertices).unfold())
            else:
                traversal = merge_edges(self.g.inject(edges).unfold())
            self.connection.run(traversal, "iterate")
            self.writes += len(chunk)
            self.write_traversals += 1

    # ----------------------------------------------------------------------- reads

    def identifiers_of(self, accounts: Iterable[str], via: Sequence[str]) -> dict[str, list[Identifier]]:
        labels = [RELATIONSHIPS[name] for name in via]
        out: dict[str, list[Identifier]] = {}
        for chunk in _chunks(sorted(set(accounts)), READ_CHUNK):
            rows = self.connection.run(
                self.g.V().has("Account", KEY, P.within(*chunk)).project("a", "ids").by(KEY).by(
                    __.out(*labels).project("l", "k", "members").by(__.label()).by(KEY)
                    .by(_members_with_uses(labels)).fold()),
                "list")
            for row in rows:
                out[row["a"]] = [_identifier(i["l"], i["k"], i["members"]) for i in row["ids"]]
        return out

    def hits_for_accounts(self, accounts: Iterable[str], since: str) -> list[HitRef]:
        found: dict[str, HitRef] = {}
        wanted = set(accounts)
        for chunk in _chunks(sorted(wanted), READ_CHUNK):
            rows = self.connection.run(
                self.g.V().has("Account", KEY, P.within(*chunk)).both_e().has("hit_id").has("ts", P.gt(since))
                .project("hit_id", "rule_id", "kind", "account_id", "ts", "mode", "event_id")
                .by("hit_id").by("rule_id").by("kind").by("account_id").by("ts").by("mode").by("event_id"),
                "list")
            for row in rows:
                if row["account_id"] in wanted:
                    found[row["hit_id"]] = HitRef(**row)
        return sorted(found.values(), key=lambda h: (h.ts, h.hit_id))

    def identifier_members(self, via: Sequence[str]) -> dict[tuple[str, str], Identifier]:
        labels = [RELATIONSHIPS[name] for name in via]
        rows = self.connection.run(
            self.g.V().has_label(*(VERTEX_LABELS[name] for name in via)).where(__.in_e(*labels))
            .project("l", "k", "members").by(__.label()).by(KEY).by(_members_with_uses(labels)), "list")
        return {(r["l"], r["k"]): _identifier(r["l"], r["k"], r["members"]) for r in rows}

    def relationship_uses(self) -> dict[RelationshipRef, int]:
        rows = self.connection.run(
            self.g.E().has_label(*RELATIONSHIPS.values()).project("a", "l", "tl", "t", "u")
            .by(__.out_v().values(KEY)).by(__.label()).by(__.in_v().label()).by(__.in_v().values(KEY))
            .by(__.values("use_count").fold()), "list")
        return {RelationshipRef(r["a"], r["l"], VertexRef(r["tl"], r["t"])): _use_count(r["u"]) for r in rows}

    def relationships_of(self, account: str) -> list[dict[str, Any]]:
        rows = self.connection.run(
            self.g.V().has("Account", KEY, account).out_e().not_(__.has("hit_id"))
            .project("label", "to_label", "to", "first_seen", "last_seen")
            .by(__.label()).by(__.in_v().label()).by(__.in_v().values(KEY))
            .by(__.values("first_seen").fold()).by(__.values("last_seen").fold()), "list")
        return [{"relationship": r["label"], "label": r["to_label"], "key": r["to"],
                 "first_seen": (r["first_seen"] or [None])[0], "last_seen": (r["last_seen"] or [None])[0]}
                for r in rows]

    def hit_edges_of(self, accounts: Sequence[str]) -> list[dict[str, Any]]:
        hits: list[dict[str, Any]] = []
        for chunk in _chunks(list(accounts), READ_CHUNK):
            hits.extend(self.connection.run(
                self.g.V().has("Account", KEY, P.within(*chunk)).out_e().has("hit_id")
                .project("label", "to_label", "to", *HIT_PROPERTIES)
                .by(__.label()).by(__.in_v().label()).by(__.in_v().values(KEY))
                .by("hit_id").by("rule_id").by("kind").by("mode").by("severity").by("event_id")
                .by("account_id").by("ts").by("value").by("threshold").by("ruleset_version"), "list"))
        return hits

    def find_hits(self, where: HitFilter, limit: int) -> list[dict[str, Any]]:
        t = self.g.E().has("hit_id")
        for prop, value in (("rule_id", where.rule_id), ("account_id", where.account_id), ("mode", where.mode)):
            if value is not None:
                t = t.has(prop, value)
        if where.since is not None:
            t = t.has("ts", P.gte(where.since))
        if where.until is not None:
            t = t.has("ts", P.lt(where.until))
        if where.before is not None:
            ts, hit = where.before
            t = t.or_(__.has("ts", P.lt(ts)), __.has("ts", ts).has("hit_id", P.lt(hit)))
        rows = self.connection.run(
            t.order().by("ts", Order.desc).by("hit_id", Order.desc).limit(int(limit))
            .project("label", "from_label", "from", "to_label", "to", *HIT_PROPERTIES, "evidence")
            .by(__.label()).by(__.out_v().label()).by(__.out_v().values(KEY)).by(__.in_v().label())
            .by(__.in_v().values(KEY)).by("hit_id").by("rule_id").by("kind").by("mode").by("severity")
            .by("event_id").by("account_id").by("ts").by("value").by("threshold").by("ruleset_version")
            .by("evidence"), "list")
        for row in rows:
            try:
                row["evidence"] = json.loads(row["evidence"])
            except ValueError:  # cut at EVIDENCE_LIMIT characters
                row["evidence"] = {"truncated": row["evidence"]}
        return list(rows)

    def vertex_times(self) -> dict[VertexRef, str]:
        rows = self.connection.run(self.g.V().not_(__.has_label(COUNTED)).project("l", "k", "f").by(__.label()).by(KEY)
                                   .by("first_seen"), "list")
        return {VertexRef(r["l"], r["k"]): r["f"] for r in rows}

    def relationship_times(self) -> dict[RelationshipRef, tuple[str, str]]:
        rows = self.connection.run(
            self.g.E().has_label(*RELATIONSHIPS.values()).project("a", "l", "tl", "t", "f", "s")
            .by(__.out_v().values(KEY)).by(__.label()).by(__.in_v().label()).by(__.in_v().values(KEY))
            .by("first_seen").by("last_seen"), "list")
        return {RelationshipRef(r["a"], r["l"], VertexRef(r["tl"], r["t"])): (r["f"], r["s"]) for r in rows}

    def counts(self) -> dict[str, int]:
        return {"vertices": self.connection.run(self.g.V().not_(__.has_label(COUNTED)).count(), "list")[0],
                "edges": self.connection.run(self.g.E().count(), "list")[0]}


# --------------------------------------------------------------------------- merge form (rows as data)


def vertex_id(vertex: VertexRef) -> str:
    return f"{vertex.label}:{vertex.key}"


def relationship_id(ref: RelationshipRef) -> str:
    return json.dumps([ref.label, ref.account, ref.target.label, ref.target.key], separators=(",", ":"))


def _vertex_row(vertex: VertexRef, first: str) -> dict[str, Any]:
    return {"match": {T.id: vertex_id(vertex), T.label: vertex.label},
            "create": {KEY: vertex.key, "first_seen": first}, "first": first}


def _relationship_row(ref: RelationshipRef, first: str, last: str, _uses: int | None = None) -> dict[str, Any]:
    """(The merge form keeps no use counts: `GremlinGraphStore.count_uses`.)"""
    return {"match": {T.id: relationship_id(ref), T.label: ref.label,
                      Direction.OUT: vertex_id(VertexRef("Account", ref.account)), Direction.IN: vertex_id(ref.target)},
            "create": {"first_seen": first, "last_seen": last}, "first": first, "last": last}


def _hit_row(hit: Hit) -> dict[str, Any]:
    source = VertexRef(VERTEX_LABELS[hit.edge.from_.field], hit.edge.from_.value)
    target = VertexRef(VERTEX_LABELS[hit.edge.to.field], hit.edge.to.value)
    return {"match": {T.id: f"hit:{hit.hit_id}", T.label: hit.edge.label,
                      Direction.OUT: vertex_id(source), Direction.IN: vertex_id(target)},
            "create": _hit_properties(hit)}


def _merge_vertices(rows: GraphTraversal) -> GraphTraversal:
    return (rows.as_("row").select("first").as_("first").select("row")
            .merge_v(__.select("match")).option(Merge.on_create, __.select("create"))
            .side_effect(__.where(P.gt("first")).by("first_seen").by()
                         .property(Cardinality.single, "first_seen", __.select("first"))))


def _merge_relationships(rows: GraphTraversal) -> GraphTraversal:
    return (rows.as_("row").select("first").as_("first").select("row").select("last").as_("last").select("row")
            .merge_e(__.select("match")).option(Merge.on_create, __.select("create"))
            .side_effect(__.where(P.gt("first")).by("first_seen").by().property("first_seen", __.select("first")))
            .side_effect(__.where(P.lt("last")).by("last_seen").by().property("last_seen", __.select("last"))))


def _merge_hits(rows: GraphTraversal) -> GraphTraversal:
    return rows.merge_e(__.select("match")).option(Merge.on_create, __.select("create"))


# --------------------------------------------------------------------------- coalesce form (chained upserts)


def _upsert_vertex(t: Any, vertex: VertexRef, first: str) -> GraphTraversal:
    return t.V().has(vertex.label, KEY, vertex.key).fold().coalesce(
        __.unfold(), __.add_v(vertex.label).property(KEY, vertex.key).property("first_seen", first)).side_effect(
        __.has("first_seen", P.gt(first)).property(Cardinality.single, "first_seen", first))


def _upsert_relationship(t: Any, item: tuple[RelationshipRef, str, str, int | None], name: str) -> GraphTraversal:
    ref, first, last, uses = item
    create = __.add_e(ref.label).to(name).property("first_seen", first).property("last_seen", last)
    if uses is not None:
        create = create.property("use_count", uses)
    upsert = t.V().has(ref.target.label, KEY, ref.target.key).as_(name).V().has("Account", KEY, ref.account).coalesce(
        __.out_e(ref.label).where(__.in_v().as_(name)), create).side_effect(
        __.has("first_seen", P.gt(first)).property("first_seen", first)).side_effect(
        __.has("last_seen", P.lt(last)).property("last_seen", last))
    return upsert if uses is None else upsert.property("use_count", uses)


def _count_event(t: Any, event_id: str) -> GraphTraversal:
    """Record that `event_id`'s uses are counted (`_new_use_counts` read it missing under the lock)."""
    return t.add_v(COUNTED).property(KEY, event_id)


def _members_with_uses(labels: Sequence[str]) -> GraphTraversal:
    """From an identifier vertex: each account that has it, with that edge's use count and the
    account's use counts over the same relationship label."""
    return (__.in_e(*labels).project("a", "l", "u", "all").by(__.out_v().values(KEY)).by(__.label())
            .by(__.values("use_count").fold())
            .by(__.out_v().out_e(*labels).project("l", "u").by(__.label()).by(__.values("use_count").fold()).fold())
            .fold())


def _identifier(label: str, key: str, members: Sequence[dict[str, Any]]) -> Identifier:
    found = sorted((m["a"], _use_count(m["u"]),
                    sum(_use_count(other["u"]) for other in m["all"] if other["l"] == m["l"])) for m in members)
    return Identifier(label, key, tuple(a for a, _, _ in found), tuple(n for _, n, _ in found),
                      tuple(link_share(n, total) for _, n, total in found))


def _use_count(values: Sequence[Any]) -> int:
    """An edge's use_count (an edge written before counts were kept counts as one use)."""
    return int(values[0]) if values else 1


def _upsert_hit(t: Any, hit: Hit, name: str) -> GraphTraversal:
    source = VertexRef(VERTEX_LABELS[hit.edge.from_.field], hit.edge.from_.value)
    target = VertexRef(VERTEX_LABELS[hit.edge.to.field], hit.edge.to.value)
    create = __.add_e(hit.edge.label).to(name)
    for prop, value in _hit_properties(hit).items():
        create = create.property(prop, value)
    return t.V().has(target.label, KEY, target.key).as_(name).V().has(source.label, KEY, source.key).coalesce(
        __.out_e(hit.edge.label).has("hit_id", hit.hit_id), create)


def _hit_properties(hit: Hit) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for prop in HIT_PROPERTIES:
        value = getattr(hit, prop)
        props[prop] = float(value) if prop in ("value", "threshold") else value
    props["evidence"] = hit.evidence_json()[:EVIDENCE_LIMIT]
    return props


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _ms_apart(earlier: str, later: str) -> int:
    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return int((parse(later) - parse(earlier)).total_seconds() * 1000)


__all__ = ["GraphStore", "GremlinGraphStore", "Ring", "WriteForm"]
