"""Graph-write throughput on gremlite: one batch of 1,000 events, as the pipeline writes it.

Reports, in one process:
  * cold batch   - a new container: every vertex and relationship of the batch is upserted once;
  * warm batch   - the next 1,000 events of the same population: only what is new is written;
  * hit edges    - 1,000 hit edges upserted by hit_id;
  * naive        - the baseline the design replaces (the reference solution's writer): every
                   vertex and relationship of every event upserted, one per round trip, with no
                   per-batch dedup and no per-container memory.
Throughput is graph elements written (or confirmed) per second; the ratios are what matter.

    .venv/bin/python bench/graph_write.py [--events 1000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.entities import entities_of
from chalicelib.events import Transaction
from chalicelib.hits import EdgeEnd, Hit, HitEdge
from chalicelib.stores import GraphStore, GremliteConnection

START = datetime(2026, 11, 1, tzinfo=UTC)


def population(n: int, seed: int, offset: int = 0, accounts: int = 300) -> list[Transaction]:
    """Accounts keep their own e-mail, phone, card, device and home IP (a few share a device or
    use a second IP); merchants are drawn per event - like real traffic, where most of a batch's
    entities and relationships were seen before."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        a = rng.randrange(accounts)
        events.append(Transaction(
            event_id=f"e{offset + i}", ts=START + timedelta(seconds=offset + i), account_id=f"a{a}",
            amount=rng.randint(1, 500), merchant_id=f"m{rng.randrange(60)}", email=f"u{a}@x", phone=f"+49{a}",
            card_id=f"c{a}", device_id=f"d{a // 2 if rng.random() < 0.1 else a}",
            ip=f"10.0.{a % 4}.{a}" if rng.random() < 0.9 else f"172.16.0.{rng.randrange(50)}"))
    return events


def timed(label: str, work, elements: int) -> float:
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    print(f"{label:<44} {elements:>6} elements in {seconds:6.2f}s = {elements / seconds:8,.0f}/s")
    return elements / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    first, second = population(args.events, 1), population(args.events, 2, offset=args.events)
    with tempfile.TemporaryDirectory() as tmp:
        store = GraphStore(GremliteConnection(Path(tmp) / "g.sqlite"))
        batch = entities_of(first)
        elements = len(batch.vertices) + len(batch.relationships)

        def cold() -> None:
            store.write_entities(first)
            store.commit()

        cold_rate = timed(f"cold batch of {args.events} events", cold, elements)
        cold_trips = store.write_traversals
        warm_batch = entities_of(second)

        def warm() -> None:
            store.write_entities(second)
            store.commit()

        sent_before = store.writes
        timed(f"warm batch of {args.events} events", warm, len(warm_batch.vertices) + len(warm_batch.relationships))
        print(f"{'':<44} (sent {store.writes - sent_before} upserts; the rest were remembered)")
        hits = [Hit(f"h{i}", "r", "velocity", "enforce", "high", e.event_id, "2026-11-01T00:00:00.000Z", e.account_id,
                    "account_id", e.account_id, 6, 5, "v", HitEdge("VELOCITY", EdgeEnd("account_id", e.account_id),
                                                                    EdgeEnd("ip", str(e.ip))), {})
                for i, e in enumerate(first)]

        def hit_edges() -> None:
            store.write_hits(hits)
            store.commit()

        hit_rate = timed(f"{len(hits)} hit edges", hit_edges, len(hits))
        store.close()

    with tempfile.TemporaryDirectory() as tmp:
        naive = GraphStore(GremliteConnection(Path(tmp) / "g.sqlite"), chain=1)  # one upsert per round trip
        per_event = sum(len(entities_of([e]).vertices) + len(entities_of([e]).relationships) for e in first)

        def naive_writes() -> None:
            for event in first:  # a fresh memory per event: nothing is deduplicated or remembered
                naive._forget_staged()
                naive.write_entities([event])
            naive.commit()

        naive_rate = timed("naive: every element of every event", naive_writes, per_event)
        naive_trips = naive.write_traversals
        naive.close()
    naive_s, cold_s = per_event / naive_rate, elements / cold_rate
    print(f"\nsame {args.events} events: naive per-event writes {naive_s:.2f}s, batched {cold_s:.2f}s cold "
          f"-> {naive_s / cold_s:.1f}x faster on gremlite")
    print(f"round trips (what dominates on Neptune): naive {naive_trips}, batched {cold_trips} "
          f"-> {naive_trips / cold_trips:.1f}x fewer")
    print(f"graph-write throughput (gremlite, batch of {args.events}): {cold_rate:,.0f} vertices+edges/s cold, "
          f"{hit_rate:,.0f} hit edges/s")


if __name__ == "__main__":
    main()
