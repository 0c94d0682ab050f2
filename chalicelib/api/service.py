"""What the investigator's API answers, over the same stores the pipeline writes: the rules in
force, hits (from the graph's hit edges), hit rates, an account's activity, window aggregates and
neighbourhood, and rings. Read-only: nothing here writes to a store.

Hits are read from the graph, not from the hit sink: in AWS the sink is the function's log, which
cannot be queried by rule, account or time, while the graph holds every hit edge with all its
fields (Neptune there, the SQLite graph tables locally - the same `GraphStore` interface).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.api.params import (
    AccountHitsQuery,
    ActivityQuery,
    HitsQuery,
    NeighbourhoodQuery,
    ParameterError,
    RatesQuery,
    RingsQuery,
    TopAccountsQuery,
    decode_cursor,
    encode_cursor,
)
from chalicelib.entities import RELATIONSHIPS, VERTEX_LABELS, iso_ms
from chalicelib.events import StoredEvent
from chalicelib.explanation import explain_event
from chalicelib.hits import Hit
from chalicelib.inbox import AlertInbox
from chalicelib.linkage import link_shares
from chalicelib.rules import GraphRule, RuleSet, RulesSource
from chalicelib.stores import GraphStore, TimeSeriesStore
from chalicelib.stores.graph_base import AccountView, HitFilter, hit_of_edge_row

#: history bounds when the caller gives none: from 1970 to a year ahead of the clock (events may
#: carry times ahead of it) - a range every backend's time type holds (nanoseconds end in 2262)
AHEAD_MS = 366 * 86_400_000
MAX_SEQ = 2**62  # every stored event
RELATIONSHIP_OF_LABEL = {VERTEX_LABELS[f]: rel for f, rel in RELATIONSHIPS.items()}


class NotFound(LookupError):
    """The thing asked for is not in the stores (404)."""


class Unavailable(RuntimeError):
    """The store this answer needs is not configured here (503)."""


@dataclass
class Investigator:
    """The API's view of the stores. Calls are serialised: the local server is threaded and the
    embedded stores keep one connection each."""

    rules: RulesSource
    timeseries: TimeSeriesStore | None
    graph: GraphStore | None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    alerts: AlertInbox | None = None  # the alert inbox (None: ALERTS_BACKEND=none)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _seen_version: str = ""
    _loaded_at: datetime | None = None

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._lock:
            yield

    def close(self) -> None:
        with self._lock:
            if self.timeseries is not None:
                self.timeseries.close()
            if self.graph is not None:
                self.graph.close()
            if self.alerts is not None:
                self.alerts.close()

    # ----------------------------------------------------------------------- rules and health

    def ruleset(self) -> RuleSet:
        ruleset = self.rules.current()
        if ruleset.version != self._seen_version:
            self._seen_version, self._loaded_at = ruleset.version, self.clock()
        return ruleset

    def health(self) -> dict[str, Any]:
        ruleset = self.ruleset()
        return {"status": "ok", "ruleset_version": ruleset.version,
                "timeseries": type(self.timeseries).__name__ if self.timeseries else None,
                "graph": self.graph.backend if self.graph else None,
                "graph_counts": self.graph.counts() if self.graph else None}

    def rules_in_force(self) -> dict[str, Any]:
        ruleset = self.ruleset()
        rejected = self.rules.last_rejected
        return {
            "version": ruleset.version,
            "source": ruleset.source,
            "loaded_at": iso_ms(self._loaded_at) if self._loaded_at else None,
            "last_rejected": None if rejected is None else {
                "at": iso_ms(rejected.at), "reason": rejected.reason, "stamp": rejected.stamp,
                "kept_version": rejected.kept_version},
            "rules": [_rule_summary(rule, ruleset) for rule in ruleset.rules],
        }

    # ----------------------------------------------------------------------- hits

    def hits(self, q: HitsQuery | AccountHitsQuery, account: str | None = None) -> dict[str, Any]:
        graph = self._graph()
        before = tuple(decode_cursor(q.cursor, list, 2)) if q.cursor else None
        where = HitFilter(rule_id=q.rule, account_id=account or getattr(q, "account", None), mode=q.mode,
                          since=q.since_iso, until=q.until_iso, before=before)
        found = graph.find_hits(where, q.limit + 1)
        page = found[:q.limit]
        more = len(found) > q.limit
        return {"items": page, "next_cursor": encode_cursor([page[-1]["ts"], page[-1]["hit_id"]]) if more else None}

    def hit_rates(self, q: RatesQuery) -> dict[str, Any]:
        graph = self._graph()
        bucket_ms = q.bucket_seconds * 1000
        until = q.until_iso
        if q.cursor:
            until = iso_ms(datetime.fromtimestamp(decode_cursor(q.cursor, int) / 1000, UTC))
        counts = graph.hit_counts(HitFilter(rule_id=q.rule, mode=q.mode, since=q.since_iso, until=until), bucket_ms)
        per_bucket: dict[int, dict[str, int]] = defaultdict(dict)
        for (bucket, rule), n in counts.items():
            per_bucket[bucket][rule] = n
        buckets = sorted(per_bucket, reverse=True)
        page = buckets[:q.limit]
        items = [{"bucket_start": iso_ms(datetime.fromtimestamp(b / 1000, UTC)), "total": sum(per_bucket[b].values()),
                  "counts": dict(sorted(per_bucket[b].items()))} for b in page]
        more = len(buckets) > q.limit
        return {"bucket_seconds": q.bucket_seconds, "rules": sorted({r for _, r in counts}), "items": items,
                "next_cursor": encode_cursor(page[-1]) if more else None}

    def top_accounts(self, q: TopAccountsQuery) -> dict[str, Any]:
        offset = decode_cursor(q.cursor, int) if q.cursor else 0
        rows = self._graph().top_accounts(
            HitFilter(rule_id=q.rule, mode=q.mode, since=q.since_iso, until=q.until_iso), offset + q.limit + 1)
        page = rows[offset:offset + q.limit]
        more = len(rows) > offset + q.limit
        return {"items": page, "next_cursor": encode_cursor(offset + q.limit) if more else None}

    # ----------------------------------------------------------------------- accounts

    def activity(self, account: str, q: ActivityQuery) -> dict[str, Any]:
        events = self._history(account, q)
        if q.cursor:
            below = decode_cursor(q.cursor, int)
            events = [e for e in events if e.seq < below]
        newest_first = sorted(events, key=lambda e: e.seq, reverse=True)
        page = newest_first[:q.limit]
        more = len(newest_first) > q.limit
        return {"account": account,
                "items": [{"seq": e.seq, **e.event.model_dump(mode="json", exclude_defaults=True)} for e in page],
                "next_cursor": encode_cursor(page[-1].seq) if more else None}

    def aggregates(self, account: str) -> dict[str, Any]:
        """Every rule's window as of the account's latest event: aggregate, threshold, verdict."""
        store = self._timeseries()
        ruleset = self.ruleset()
        history = store.history("account_id", [account], 0, self._now_ms() + AHEAD_MS, MAX_SEQ)
        if not history:
            raise NotFound(f"account {account!r} has no events in the time-series store")
        latest = max(history, key=lambda e: e.seq)
        earlier: dict[str, StoredEvent] = {e.event.event_id: e for e in history if e.seq < latest.seq}
        longest = max((r.window for r in ruleset.rules if r.window is not None), default=None)
        if longest is not None:
            start = latest.ts_ms - int(longest.total_seconds() * 1000)
            for key_field in sorted({r.key_field for r in ruleset.micro_rules} - {"account_id"}):
                value = latest.event.get(key_field)
                if value is not None:
                    for e in store.history(key_field, [str(value)], start, latest.ts_ms, latest.seq - 1):
                        earlier.setdefault(e.event.event_id, e)
        hits = self._hits_of_event(account, latest) if self.graph is not None else {}
        observed = store.observed_since() if ruleset.needs_full_history else None  # a read only rules waiting need
        explained = explain_event(ruleset, latest.event, [e.event for e in sorted(earlier.values(),
                                                                                  key=lambda e: e.seq)], hits,
                                  observed_since=latest.ts_ms if observed is None else observed)
        return {"account": account, "as_of_event": latest.event.event_id, "as_of": iso_ms(latest.event.ts),
                "ruleset_version": ruleset.version,
                "items": [{k: v for k, v in x.to_dict().items() if k != "contributing"} for x in explained]}

    def neighbourhood(self, account: str, q: NeighbourhoodQuery) -> dict[str, Any]:
        view = self._graph().account_view(account, hops=q.hops,
                                          max_accounts_per_identifier=q.max_accounts_per_identifier)
        if not view["found"]:
            raise NotFound(f"account {account!r} is not in the graph")
        return neighbourhood_graph(view, q.max_nodes)

    def rings(self, q: RingsQuery) -> dict[str, Any]:
        offset = decode_cursor(q.cursor, int) if q.cursor else 0
        rings = self._graph().rings(list(q.via), q.min_size, q.max_accounts_per_identifier, rank="cohesion",
                                    min_link_share=link_shares(q.min_link_share), min_link_uses=q.min_link_uses)
        page = rings[offset:offset + q.limit]
        return {"total": len(rings),
                "items": [{"accounts": r.accounts, "size": len(r.accounts), "evidence": r.evidence,
                           "cohesion": r.cohesion,
                           "identifiers": [{"label": i.label, "key": i.key, "accounts": list(i.accounts)}
                                           for i in r.identifiers]} for r in page],
                "next_cursor": encode_cursor(offset + q.limit) if len(rings) > offset + q.limit else None}

    # ----------------------------------------------------------------------- helpers

    def _graph(self) -> GraphStore:
        if self.graph is None:
            raise Unavailable("no graph store is configured (GRAPH_BACKEND=none)")
        return self.graph

    def _timeseries(self) -> TimeSeriesStore:
        if self.timeseries is None:
            raise Unavailable("no time-series store is configured")
        return self.timeseries

    def _history(self, account: str, q: ActivityQuery) -> list[StoredEvent]:
        start = 0 if q.since is None else int(q.since.timestamp() * 1000) - 1  # since inclusive
        end = self._now_ms() + AHEAD_MS if q.until is None else int(q.until.timestamp() * 1000) - 1  # exclusive
        return self._timeseries().history("account_id", [account], start, end, MAX_SEQ)

    def _now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    def _hits_of_event(self, account: str, event: StoredEvent) -> dict[str, Hit]:
        ts = iso_ms(event.event.ts)
        rows = self._graph().find_hits(HitFilter(account_id=account, since=ts), 500)
        return {r["rule_id"]: hit_of_edge_row(r) for r in rows if r["event_id"] == event.event.event_id}


def _rule_summary(rule: Any, ruleset: RuleSet) -> dict[str, Any]:
    config = rule.config
    window = rule.window
    return {"id": rule.id, "kind": rule.kind, "mode": config.mode, "severity": config.severity,
            "description": config.description, "key": rule.key_field,
            "window_seconds": None if window is None else window.total_seconds(),
            "graph": isinstance(rule, GraphRule), "quarantined": rule.id in ruleset.quarantined,
            "edge": {"label": rule.edge_label(), "from": rule.edge_ends()[0], "to": rule.edge_ends()[1]}}


def neighbourhood_graph(view: AccountView, max_nodes: int) -> dict[str, Any]:
    """An `account_view` as nodes and edges to draw: accounts (with their hop distance and hit
    count), the identifiers linking them and the hit edges' targets; relationship edges and hit
    edges (`hit: true`). Nodes beyond `max_nodes` (farthest first) are left out, with their edges."""
    center = view["account"]
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, Any]] = []
    hits_per_account: dict[str, int] = defaultdict(int)
    for h in view["hits"]:
        hits_per_account[h["account_id"]] += 1

    def node(node_id: str, **attrs: Any) -> bool:
        if node_id not in nodes:
            if len(nodes) >= max_nodes:
                return False
            nodes[node_id] = {"id": node_id, **attrs}
        return True

    for item in view["accounts"]:
        node(f"Account:{item['account']}", type="Account", key=item["account"], hops=item["hops"],
             hits=hits_per_account[item["account"]], center=item["account"] == center)
    for entity in view["entities"]:
        target = f"{entity['label']}:{entity['key']}"
        if node(target, type=entity["label"], key=entity["key"]):
            edges.append({"source": f"Account:{center}", "target": target, "label": entity["relationship"],
                          "hit": False})
    for ident in view["shared_identifiers"]:
        target = f"{ident['label']}:{ident['key']}"
        if not node(target, type=ident["label"], key=ident["key"]):
            continue
        for acct in ident["accounts"]:
            if acct != center and f"Account:{acct}" in nodes:
                edges.append({"source": f"Account:{acct}", "target": target,
                              "label": RELATIONSHIP_OF_LABEL.get(ident["label"], ident["label"]), "hit": False})
    hit_edges: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for h in view["hits"]:  # one drawn edge per (source, target, rule), with how many hits it stands for
        source, target = f"Account:{h['account_id']}", f"{h['to_label']}:{h['to']}"
        if source in nodes and node(target, type=h["to_label"], key=h["to"]):
            edge = hit_edges.setdefault((source, target, h["label"], h["rule_id"]), {
                "source": source, "target": target, "label": h["label"], "hit": True, "rule_id": h["rule_id"],
                "mode": h["mode"], "severity": h["severity"], "count": 0, "last_ts": h["ts"]})
            edge["count"] += 1
            edge["last_ts"] = max(edge["last_ts"], h["ts"])
    edges.extend(hit_edges.values())
    total = len(view["accounts"]) + len(view["shared_identifiers"])
    return {"account": center, "nodes": list(nodes.values()), "edges": edges,
            "truncated": len(nodes) >= max_nodes and total > len(nodes)}


def check_account(account: str) -> str:
    """An account id from the path: bounded and printable (else 400)."""
    if not account or len(account) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in account):
        raise ParameterError("account: give an account id of 1 to 200 printable characters")
    return account
