"""The embedded default graph: four tables in one SQLite file (WAL), written set-wise.

A batch's writes are a few `executemany` upserts inside one transaction (`BEGIN IMMEDIATE` at the
first write, so concurrent writers queue instead of interleaving); `commit()` ends it. The
timestamp rule is in the upsert itself - `first_seen = min(...)`, `last_seen = max(...)` in
`ON CONFLICT DO UPDATE` - so it holds whoever writes, in whatever order, with no memory of past
writes in the process. Use counts are exact under redelivery and concurrent writers: an event's
uses are added only in the transaction that records its id in `graph_counted_events`, and the
write lock serialises the check and the add (DESIGN.md, "Link strength"): one
`INSERT OR IGNORE ... RETURNING` both records the batch's events and names those not counted
before (SQLite 3.35+), so counting costs no separate read. A hop of a walk is one
query (identifiers of the frontier joined with everyone who has them), through a covering index
on the identifier side. Key lists are passed as one JSON parameter: no value from a record ever becomes SQL text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from operator import itemgetter
from pathlib import Path
from typing import Any

from chalicelib.entities import (
    RELATIONSHIPS,
    VERTEX_LABELS,
    EntityBatch,
    HitRef,
    Identifier,
    RelationshipRef,
    RelationshipRows,
    UseRows,
    VertexRef,
    entity_rows,
)
from chalicelib.events import Transaction
from chalicelib.hits import Hit
from chalicelib.linkage import link_share
from chalicelib.stores.exceptions import StoreError
from chalicelib.stores.graph_base import EVIDENCE_LIMIT, HIT_PROPERTIES, GraphStore, HitFilter
from chalicelib.stores.graph_mirror import MIRROR_MAX_LINKS, MIRRORED_LABELS, LinkMirror, LinkRow, MirrorKeeper
from chalicelib.stores.sqlite import open_sqlite, sqlite_errors, translate_sqlite_error
from chalicelib.stores.sqlite_graph_sql import (
    COUNT_EVENTS,
    HIT_LAYOUT,
    IDENTIFIERS_OF,
    INSERT_HIT,
    KNOWN_ACCOUNTS,
    MEMBERS,
    MIRROR_ACCOUNTS,
    MIRROR_LINKS,
    SCHEMA,
    UPSERT_RELATIONSHIP,
    UPSERT_VERTEX,
    add_use_counts,
    upgrade_hits,
)
from chalicelib.stores.sqlite_layout import upgrade_layout

#: The most vertices a store remembers having written (`SQLiteGraphStore._vertices`)
MAX_VERTICES_KEPT = 200_000


class SQLiteGraphStore(GraphStore):
    backend = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 10.0,
                 mirror_max_links: int = MIRROR_MAX_LINKS) -> None:
        self.path = Path(path)
        self._db = open_sqlite(path, SCHEMA, busy_timeout_s, translate=_translate)
        try:
            with self._errors("adding use counts to an older graph"):
                add_use_counts(self._db)
            with self._errors("laying out the hit edges"):
                upgrade_layout(self._db, HIT_LAYOUT, upgrade_hits)
        except BaseException:
            self._db.close()
            raise
        self._open = False  # a batch transaction is open
        self.writes = 0  # rows sent (for reports and benchmarks)
        self.mirror = MirrorKeeper(mirror_max_links)  # the walks' reads, in process (graph_mirror.py)
        # Vertices this connection wrote, with the first_seen it wrote: the file holds that or an
        # earlier one (first_seen only ever falls, whoever writes), so an upsert with a later or
        # equal first_seen would change nothing and is not sent. Written in the open batch
        # (`_batch_vertices`) until it commits: a rollback forgets them.
        self._vertices: dict[tuple[str, str], str] = {}
        self._batch_vertices: dict[tuple[str, str], str] = {}

    # ----------------------------------------------------------------------- writes

    def write_entities(self, events: Iterable[Transaction]) -> int:
        vertices, spans, uses = entity_rows(events)
        # in key order: neighbouring rows land on the same B-tree pages
        return self._write_rows(sorted((*v, first) for v, first in vertices.items()), spans, uses)

    def write_entity_batch(self, batch: EntityBatch) -> int:
        return self._write_rows(
            [(v.label, v.key, first) for v, first in batch.vertices.items()],
            {(ref.account, ref.label, ref.target.label, ref.target.key): span
             for ref, span in batch.relationships.items()},
            {event_id: tuple((r.account, r.label, r.target.label, r.target.key) for r in used)
             for event_id, used in batch.uses.items()})

    def _write_rows(self, vertices: list[tuple[str, ...]], spans: RelationshipRows, uses: UseRows) -> int:
        with self._errors("writing entities"):
            self._begin()  # the write lock: from here no other writer can count the same events
            try:
                added: dict[tuple[str, str, str, str], int] = {}
                if uses:
                    fresh = self._db.execute(COUNT_EVENTS, (json.dumps(sorted(uses)),)).fetchall()
                    for (event_id,) in fresh:
                        for ref in uses[event_id]:
                            added[ref] = added.get(ref, 0) + 1
                relationships = sorted((*ref, *span, added.get(ref, 0)) for ref, span in spans.items())
                vertices = self._vertices_to_send(vertices)
                self._db.executemany(UPSERT_VERTEX, vertices)
                self._db.executemany(UPSERT_RELATIONSHIP, relationships)
            except BaseException:
                self.mirror.drop()  # what reached the file is not known: read it again
                self._batch_vertices = {}
                raise
            for label, key, first in vertices:
                self._batch_vertices[(label, key)] = first
        if self.mirror.current is not None:
            self.mirror.current.apply(vertices, relationships)
            self.mirror.applied()
        self.writes += len(vertices) + len(relationships)
        return len(vertices) + len(relationships)

    def write_hits(self, hits: Sequence[Hit]) -> int:
        fresh = list({h.hit_id: h for h in hits}.values())
        ends: dict[VertexRef, str] = {}
        for hit in fresh:
            for end in (hit.edge.from_, hit.edge.to):
                ref = VertexRef(VERTEX_LABELS[end.field], end.value)
                ends[ref] = min(hit.ts, ends.get(ref, hit.ts))
        self.write_entity_batch(EntityBatch(vertices=ends))
        with self._errors("writing hit edges"):
            self._db.executemany(INSERT_HIT, [_hit_row(h) for h in fresh])
        self.writes += len(fresh)
        return len(fresh)

    def commit(self) -> None:
        if self._open:
            with self._errors("committing the graph"):
                self._db.execute("COMMIT")
            self._open = False
            if len(self._vertices) + len(self._batch_vertices) > MAX_VERTICES_KEPT:
                self._vertices = {}  # a memo, not a copy of the graph: start again
            self._vertices.update(self._batch_vertices)
            self._batch_vertices = {}

    def _vertices_to_send(self, rows: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        """The vertex rows whose upsert may change the file (see `_vertices`)."""
        done, pending = self._vertices, self._batch_vertices
        out = []
        for row in rows:
            key = (row[0], row[1])
            written = pending.get(key) or done.get(key)
            if written is None or row[2] < written:
                out.append(row)
        return out

    def rollback(self) -> None:
        if self._open:
            self._open = False
            self.mirror.drop()  # it followed the writes being undone
            self._batch_vertices = {}
            with self._errors("rolling back the graph"):
                self._db.execute("ROLLBACK")

    def close(self) -> None:
        self.rollback()
        self._db.close()

    def _begin(self) -> None:
        if not self._open:
            self._db.execute("BEGIN IMMEDIATE")
            self._open = True
            self.mirror.batch_started(self._data_version())

    def _data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _current_mirror(self) -> LinkMirror | None:
        """The link mirror if it is exact now (filled first, inside a batch, where that pays)."""
        if not self._open:
            return self.mirror.outside_batch(self._data_version())
        return self.mirror.in_batch(self._scan_links)

    def _scan_links(self, limit: int) -> tuple[list[str], list[LinkRow]]:
        rows = self._db.execute(MIRROR_LINKS, (json.dumps(sorted(MIRRORED_LABELS)), limit)).fetchall()
        return [row[0] for row in self._db.execute(MIRROR_ACCOUNTS)], rows

    # ----------------------------------------------------------------------- reads

    def identifiers_of(self, accounts: Iterable[str], via: Sequence[str]) -> dict[str, list[Identifier]]:
        wanted = sorted(set(accounts))
        labels = [RELATIONSHIPS[f] for f in via]
        if MIRRORED_LABELS.issuperset(labels):
            with self._errors("reading identifiers"):
                mirror = self._current_mirror()
            found = mirror.identifiers_of(wanted, labels) if mirror is not None else None
            if found is not None:
                return found
        keys = json.dumps(wanted)
        with self._errors("reading identifiers"):
            known = [row[0] for row in self._db.execute(KNOWN_ACCOUNTS, (keys,))]
            rows = self._db.execute(IDENTIFIERS_OF, (keys, json.dumps([RELATIONSHIPS[f] for f in via]))).fetchall()
        out: dict[str, list[Identifier]] = {account: [] for account in known}
        for ident in _identifiers(rows).values():
            for account in ident.accounts:
                if account in out:
                    out[account].append(ident)
        return out

    def hits_for_accounts(self, accounts: Iterable[str], since: str) -> list[HitRef]:
        with self._errors("reading hits"):
            rows = self._db.execute(
                "SELECT hit_id, rule_id, kind, account_id, ts, mode, event_id FROM graph_hits "
                "WHERE account_id IN (SELECT value FROM json_each(?)) AND ts > ? ORDER BY ts, hit_id",
                (json.dumps(sorted(set(accounts))), since)).fetchall()
        return [HitRef(*row) for row in rows]

    def identifier_members(self, via: Sequence[str]) -> dict[tuple[str, str], Identifier]:
        with self._errors("reading identifiers"):
            rows = self._db.execute(MEMBERS, (json.dumps([RELATIONSHIPS[f] for f in via]),)).fetchall()
        return _identifiers(rows)

    def relationship_uses(self) -> dict[RelationshipRef, int]:
        with self._errors("reading relationships"):
            rows = self._db.execute("SELECT account, label, target_label, target_key, use_count "
                                    "FROM graph_relationships").fetchall()
        return {RelationshipRef(a, label, VertexRef(tl, tk)): int(n) for a, label, tl, tk, n in rows}

    def relationships_of(self, account: str) -> list[dict[str, Any]]:
        with self._errors("reading relationships"):
            rows = self._db.execute(
                "SELECT label, target_label, target_key, first_seen, last_seen FROM graph_relationships "
                "WHERE account = ?", (account,)).fetchall()
        return [{"relationship": r[0], "label": r[1], "key": r[2], "first_seen": r[3], "last_seen": r[4]}
                for r in rows]

    def hit_edges_of(self, accounts: Sequence[str]) -> list[dict[str, Any]]:
        columns = ("label", "to_label", "to", *HIT_PROPERTIES)
        with self._errors("reading hit edges"):
            rows = self._db.execute(
                f"SELECT label, to_label, to_key, {', '.join(HIT_PROPERTIES)} FROM graph_hits "
                "WHERE account_id IN (SELECT value FROM json_each(?)) AND from_label = 'Account' "
                "AND from_key = account_id", (json.dumps(list(accounts)),)).fetchall()
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def find_hits(self, where: HitFilter, limit: int) -> list[dict[str, Any]]:
        condition, params = _hit_condition(where)
        columns = ("label", "from_label", "from", "to_label", "to", *HIT_PROPERTIES, "evidence")
        with self._errors("reading hits"):
            rows = self._db.execute(
                f"SELECT label, from_label, from_key, to_label, to_key, {', '.join(HIT_PROPERTIES)}, evidence "
                f"FROM graph_hits WHERE {condition} ORDER BY ts DESC, hit_id DESC LIMIT ?",
                (*params, int(limit))).fetchall()
        hits = [dict(zip(columns, row, strict=True)) for row in rows]
        for hit in hits:
            hit["evidence"] = _evidence(hit["evidence"])
        return hits

    def hit_counts(self, where: HitFilter, bucket_ms: int) -> dict[tuple[int, str], int]:
        condition, params = _hit_condition(where)
        # whole seconds from strftime, milliseconds from the fixed-width text (iso_ms)
        epoch_ms = "(CAST(strftime('%s', ts) AS INTEGER) * 1000 + CAST(substr(ts, 21, 3) AS INTEGER))"
        with self._errors("counting hits"):
            rows = self._db.execute(
                f"SELECT {epoch_ms} / ? * ? AS bucket, rule_id, COUNT(*) FROM graph_hits WHERE {condition} "
                "GROUP BY bucket, rule_id", (int(bucket_ms), int(bucket_ms), *params)).fetchall()
        return {(int(bucket), rule): int(n) for bucket, rule, n in rows}

    def top_accounts(self, where: HitFilter, limit: int) -> list[dict[str, Any]]:
        condition, params = _hit_condition(where)
        with self._errors("ranking accounts"):
            rows = self._db.execute(
                "SELECT account_id, COUNT(*) AS n, COUNT(DISTINCT rule_id), MAX(ts) FROM graph_hits "
                f"WHERE {condition} GROUP BY account_id ORDER BY n DESC, account_id LIMIT ?",
                (*params, int(limit))).fetchall()
        return [{"account_id": a, "hits": int(n), "rules": int(r), "last_ts": last} for a, n, r, last in rows]

    def vertex_times(self) -> dict[VertexRef, str]:
        with self._errors("reading vertices"):
            rows = self._db.execute("SELECT label, key, first_seen FROM graph_vertices").fetchall()
        return {VertexRef(label, key): first for label, key, first in rows}

    def relationship_times(self) -> dict[RelationshipRef, tuple[str, str]]:
        with self._errors("reading relationships"):
            rows = self._db.execute("SELECT account, label, target_label, target_key, first_seen, last_seen "
                                    "FROM graph_relationships").fetchall()
        return {RelationshipRef(a, label, VertexRef(tl, tk)): (f, s) for a, label, tl, tk, f, s in rows}

    def counts(self) -> dict[str, int]:
        with self._errors("counting"):
            vertices = self._db.execute("SELECT COUNT(*) FROM graph_vertices").fetchone()[0]
            edges = (self._db.execute("SELECT COUNT(*) FROM graph_relationships").fetchone()[0]
                     + self._db.execute("SELECT COUNT(*) FROM graph_hits").fetchone()[0])
        return {"vertices": int(vertices), "edges": int(edges)}

    def _errors(self, doing: str) -> AbstractContextManager[None]:
        return sqlite_errors(_translate, doing)


def _identifiers(rows: Iterable[tuple[str, str, str, int, int]]) -> dict[tuple[str, str], Identifier]:
    """(label, key, account, uses, the account's uses of any identifier of that relationship) rows
    as identifiers with every member's uses and share (members by account; an account has an
    identifier once). A walk reads tens of thousands of rows per batch: plain loops, no per-row
    tuples, each (uses, total) share worked out once."""
    members: dict[tuple[str, str], list[tuple[str, str, str, int, int]]] = {}
    for row in rows:
        found = members.get((row[0], row[1]))
        if found is None:
            members[(row[0], row[1])] = [row]
        else:
            found.append(row)
    shares: dict[tuple[int, int], float] = {}
    out = {}
    for (label, key), found in members.items():
        if len(found) == 1:  # most identifiers: an account's own e-mail, phone, device, card
            row = found[0]
            value = shares.get((row[3], row[4]))
            if value is None:
                value = shares[(row[3], row[4])] = link_share(row[3], row[4])
            out[(label, key)] = Identifier(label, key, (row[2],), (row[3],), (value,))
            continue
        found.sort(key=itemgetter(2))  # by account
        share = []
        for row in found:
            value = shares.get((row[3], row[4]))
            if value is None:
                value = shares[(row[3], row[4])] = link_share(row[3], row[4])
            share.append(value)
        out[(label, key)] = Identifier(label, key, tuple([row[2] for row in found]), tuple([row[3] for row in found]),
                                       tuple(share))
    return out






def _hit_row(hit: Hit) -> tuple[Any, ...]:
    source, target = hit.edge.from_, hit.edge.to
    evidence = hit.evidence_json()[:EVIDENCE_LIMIT]
    return (hit.hit_id, hit.edge.label, VERTEX_LABELS[source.field], source.value, VERTEX_LABELS[target.field],
            target.value, hit.rule_id, hit.kind, hit.mode, hit.severity, hit.event_id, hit.account_id, hit.ts,
            float(hit.value), float(hit.threshold), hit.ruleset_version, evidence)


def _hit_condition(where: HitFilter) -> tuple[str, list[Any]]:
    """The WHERE clause of a hit filter: fixed text, every value a parameter."""
    parts, params = ["1 = 1"], []
    for column, value in (("rule_id", where.rule_id), ("account_id", where.account_id), ("mode", where.mode)):
        if value is not None:
            parts.append(f"{column} = ?")
            params.append(value)
    if where.since is not None:
        parts.append("ts >= ?")
        params.append(where.since)
    if where.until is not None:
        parts.append("ts < ?")
        params.append(where.until)
    if where.before is not None:
        parts.append("(ts < ? OR (ts = ? AND hit_id < ?))")
        params.extend([where.before[0], where.before[0], where.before[1]])
    return " AND ".join(parts), params


def _evidence(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:  # cut at EVIDENCE_LIMIT characters
        return {"truncated": text}
    return value if isinstance(value, dict) else {"value": value}


def _translate(exc: sqlite3.Error, doing: str) -> StoreError:
    return translate_sqlite_error(exc, doing, "graph store")
