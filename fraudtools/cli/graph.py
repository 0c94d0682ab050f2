"""`graph account` and `graph rings`: read the entity graph an embedded run built."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from chalicelib.linkage import link_shares
from chalicelib.stores import GraphStore
from chalicelib.wiring import open_embedded_graph


def open_graph(data_dir: Path) -> GraphStore:
    graph = open_embedded_graph(data_dir)
    if graph is None:
        raise SystemExit(f"error: no graph in {data_dir} (entity-graph.sqlite or graph.sqlite): run "
                         f"`replay --data-dir {data_dir}` or `demo` first, or point --data-dir at the directory "
                         "that holds it")
    return graph


def cmd_graph_account(args: argparse.Namespace) -> int:
    graph = open_graph(args.data_dir)
    try:
        view = graph.account_view(args.account, hops=args.hops)
    finally:
        graph.close()
    if args.json:
        print(json.dumps(view, indent=2))
        return 0 if view["found"] else 1
    if not view["found"]:
        print(f"account {args.account!r} is not in the graph at {args.data_dir}", file=sys.stderr)
        return 1
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]Account {view['account']}[/bold]")
    for entity in view["entities"]:
        console.print(f"  -[{entity['relationship']}]-> {entity['label']} {entity['key']}"
                      f"  (first {entity['first_seen']}, last {entity['last_seen']})")
    shared = view["shared_identifiers"]
    if shared:
        console.print(f"Accounts within {args.hops} hop(s) through shared identifiers: {len(view['accounts']) - 1}")
        for ident in shared:
            console.print(f"  {ident['label']} {ident['key']}: {', '.join(ident['accounts'])}")
    own = [h for h in view["hits"] if h["account_id"] == args.account]
    table = Table(title=f"Hits on {args.account} ({len(own)})")
    for column in ("ts", "rule", "mode", "severity", "edge", "value"):
        table.add_column(column, overflow="fold")
    for h in own:
        table.add_row(h["ts"], h["rule_id"], h["mode"], h["severity"],
                      f"-[{h['label']}]-> {h['to_label']} {h['to']}", f"{h['value']:g} > {h['threshold']:g}")
    console.print(table)
    by_neighbour: dict[str, Counter[str]] = {}
    for h in view["hits"]:
        if h["account_id"] != args.account:
            by_neighbour.setdefault(h["account_id"], Counter())[h["rule_id"]] += 1
    for neighbour, counts in sorted(by_neighbour.items()):
        console.print(f"  neighbour {neighbour}: " + ", ".join(f"{r} x{n}" for r, n in sorted(counts.items())))
    return 0


def cmd_graph_rings(args: argparse.Namespace) -> int:
    graph = open_graph(args.data_dir)
    try:
        rings = graph.rings(args.via, args.min_size, args.max_accounts_per_identifier, rank=args.rank,
                            min_link_share=link_shares(args.min_link_share), min_link_uses=args.min_link_uses)
    finally:
        graph.close()
    if args.json:
        print(json.dumps([{"accounts": r.accounts, "evidence": r.evidence, "cohesion": r.cohesion, "identifiers": [
            {"label": i.label, "key": i.key, "accounts": list(i.accounts)} for i in r.identifiers]}
            for r in rings], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    order = "largest first" if args.rank == "size" else "most cohesive first: evidence x cohesion"
    table = Table(title=f"Rings: accounts linked by shared {', '.join(args.via)} ({order})")
    for column in ("#", "accounts", "evidence", "cohesion", "members", "linked by"):
        table.add_column(column, overflow="fold")
    for rank, ring in enumerate(rings[:args.limit], 1):
        links = "; ".join(f"{i.label} {i.key} ({len(i.accounts)})" for i in ring.identifiers[:6])
        more = f" +{len(ring.identifiers) - 6} more" if len(ring.identifiers) > 6 else ""
        table.add_row(str(rank), str(len(ring.accounts)), f"{ring.evidence:.2f}", f"{ring.cohesion:.2f}",
                      ", ".join(ring.accounts[:12])
                      + (" ..." if len(ring.accounts) > 12 else ""), links + more)
    Console().print(table)
    print(f"{len(rings)} rings of at least {args.min_size} accounts")
    return 0
