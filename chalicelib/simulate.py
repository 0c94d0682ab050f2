"""A small deterministic transaction stream with labelled fraud scenarios.

This is the starting point of the simulator: normal accounts with home IPs and devices, plus a
few labelled scenarios that the default rules are meant to catch. `seed` fixes everything.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@dataclass
class SimulatedStream:
    events: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # event_id -> scenario ("normal" if absent)

    def add(self, scenario: str | None, **event: Any) -> None:
        event["event_id"] = f"sim-{len(self.events):07d}"
        self.events.append(event)
        if scenario:
            self.labels[event["event_id"]] = scenario


def simulate(*, seed: int = 7, accounts: int = 200, hours: float = 6.0) -> SimulatedStream:
    """Events in arrival order (mostly time order, with a little network jitter)."""
    if accounts < 10:
        raise ValueError("simulate needs at least 10 accounts")
    rng = random.Random(seed)
    stream = SimulatedStream()
    timeline: list[tuple[datetime, str | None, dict[str, Any]]] = []
    span = timedelta(hours=hours)

    homes = {
        f"acct-{i:05d}": (f"10.{i // 250}.{i % 250}.{rng.randint(1, 254)}", f"dev-{i:05d}",
                          f"card-{i:05d}", (48.1 + rng.uniform(-2, 2), 11.5 + rng.uniform(-2, 2)))
        for i in range(accounts)
    }
    merchants = [f"m-{i:03d}" for i in range(40)]
    for account, (ip, device, card, (lat, lon)) in homes.items():
        for _ in range(rng.randint(2, 12)):
            ts = START + span * rng.random()
            amount = Decimal(str(round(rng.lognormvariate(3.5, 0.8), 2)))
            timeline.append((ts, None, _tx(account, amount, rng.choice(merchants), ip, device, card, lat, lon, ts)))

    def burst(scenario: str, at: datetime, n: int, every_s: float, **fixed: Any) -> None:
        for k in range(n):
            ts = at + timedelta(seconds=every_s * k)
            timeline.append((ts, scenario, {**fixed, "ts": ts.isoformat()}))

    # Reference-style ring: accounts sharing one email and phone, high-value bursts.
    for k, account in enumerate(f"ring-{i:02d}" for i in range(10)):
        burst("shared_ring", START + timedelta(minutes=30 + k), 3, 40.0, account_id=account,
              amount="20000", merchant_id="m-900", email="shared@example.com", phone="10001000",
              ip=f"172.16.0.{k}", device_id=f"ring-dev-{k}")
    names = sorted(homes)
    tester, structurer, traveller = rng.sample(names, 3)
    # IP fan-out: one IP, many accounts in minutes.
    for k, account in enumerate(rng.sample(names, 8)):
        burst("ip_fanout", START + timedelta(hours=2, seconds=45 * k), 1, 1.0,
              account_id=account, amount="49.99", merchant_id="m-901",
              ip="203.0.113.7", device_id=homes[account][1])
    # Card testing: many tiny amounts on one card.
    burst("card_testing", START + timedelta(hours=3), 15, 20.0, account_id=tester,
          amount="1.00", merchant_id="m-902", card_id="card-stolen-1", ip="198.18.0.9")
    # Structuring: amounts just under 10,000 over a day's worth of hours.
    burst("structuring", START + timedelta(hours=1), 5, 2400.0, account_id=structurer,
          amount="9850", merchant_id="m-903", ip=homes[structurer][0])
    # Impossible travel: home, then across the world 20 minutes later.
    lat, lon = homes[traveller][3]
    burst("impossible_travel", START + timedelta(hours=4), 1, 1.0, account_id=traveller,
          amount="80", merchant_id="m-904", lat=lat, lon=lon)
    burst("impossible_travel", START + timedelta(hours=4, minutes=20), 1, 1.0, account_id=traveller,
          amount="80", merchant_id="m-904", lat=-33.87, lon=151.21)

    # Arrival order: time order with up to 2 s of jitter (a little out-of-order, like real streams).
    timeline.sort(key=lambda item: item[0] + timedelta(seconds=rng.uniform(0, 2)))
    for _, scenario, event in timeline:
        stream.add(scenario, **event)
    return stream


def _tx(account: str, amount: Decimal, merchant: str, ip: str, device: str, card: str,
        lat: float, lon: float, ts: datetime) -> dict[str, Any]:
    return {"account_id": account, "amount": str(amount), "merchant_id": merchant, "ip": ip,
            "device_id": device, "card_id": card, "lat": round(lat, 4), "lon": round(lon, 4),
            "ts": ts.isoformat()}


def iter_lines(stream: SimulatedStream) -> Iterator[str]:
    import json

    for event in stream.events:
        yield json.dumps(event)
