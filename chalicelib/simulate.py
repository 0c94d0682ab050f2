"""A deterministic, labelled transaction stream: normal behaviour plus fraud scenarios.

Normal accounts have a home city, a home IP and one or two devices, a card, an e-mail and a
phone, and pay merchants of a few categories with log-normal amounts, more by day than by night.
Some legitimately share an IP (an office, a mobile carrier's NAT) or a device (a household).

Fraud scenarios, each labelled on its events and its accounts:

* `shared_ring`      - the reference solution's ring: accounts sharing one e-mail and one phone,
                       moving high values in bursts;
* `ip_fanout`        - one IP used by many accounts within minutes;
* `card_testing`     - one card tried with many tiny amounts, fast;
* `account_takeover` - an established account gets a new device and IP, then spends far above
                       its habit (its events before the takeover stay normal);
* `structuring`      - amounts just under the 10,000 reporting threshold, spread over a day;
* `mule_ring`        - a slow ring sharing devices over days, each account transacting like a
                       normal one: invisible to short windows, visible in the graph;
* `impossible_travel`- a card present at home and, minutes later, on another continent.

Same seed, same stream. Arrival order is time order with up to two seconds of network jitter.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
NORMAL = "normal"
SCENARIOS = ("shared_ring", "ip_fanout", "card_testing", "account_takeover", "structuring", "mule_ring",
             "impossible_travel")

CITIES = [("Munich", 48.14, 11.58), ("Berlin", 52.52, 13.40), ("Paris", 48.86, 2.35), ("Madrid", 40.42, -3.70),
          ("Milan", 45.46, 9.19), ("Vienna", 48.21, 16.37), ("Amsterdam", 52.37, 4.90), ("Warsaw", 52.23, 21.01)]
FAR_AWAY = [("Sydney", -33.87, 151.21), ("Sao Paulo", -23.55, -46.63), ("Tokyo", 35.68, 139.69)]
#: category -> (merchants, log-normal mu, sigma) of amounts; exp(mu) is the median amount
CATEGORIES = {"grocery": (25, 3.4, 0.5), "restaurant": (25, 3.2, 0.5), "fuel": (10, 4.0, 0.3),
              "online": (20, 3.8, 0.9), "electronics": (8, 5.5, 0.8), "travel": (6, 6.0, 0.7)}
CATEGORY_WEIGHTS = {"grocery": 30, "restaurant": 25, "fuel": 10, "online": 25, "electronics": 5, "travel": 5}
#: relative activity per hour of day (UTC, Europe): quiet nights, busy lunch and evening
HOURLY = [1, 0.5, 0.3, 0.3, 0.3, 0.5, 1.5, 3, 4, 4, 4.5, 5, 6, 5.5, 4.5, 4.5, 5, 6, 6.5, 6, 5, 4, 3, 2]


@dataclass
class Account:
    account_id: str
    email: str
    phone: str
    card_id: str
    ip: str
    devices: list[str]
    city: tuple[str, float, float]
    activity: float  # transactions per day


@dataclass
class SimulatedStream:
    events: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # event_id -> scenario (normal events absent)
    account_labels: dict[str, str] = field(default_factory=dict)  # account -> scenario
    seed: int = 0
    parameters: dict[str, Any] = field(default_factory=dict)

    def label_of(self, event_id: str) -> str:
        return self.labels.get(event_id, NORMAL)

    def write(self, events_path: Path, labels_path: Path, *, fmt: str = "native") -> None:
        events_path.parent.mkdir(parents=True, exist_ok=True)
        with events_path.open("w", encoding="utf-8") as handle:
            for event in self.events:
                handle.write(json.dumps(to_seed_format(event) if fmt == "seed" else event) + "\n")
        labels_path.parent.mkdir(parents=True, exist_ok=True)
        labels_path.write_text(json.dumps({
            "seed": self.seed, "parameters": self.parameters, "scenarios": list(SCENARIOS),
            "events": self.labels, "accounts": self.account_labels,
        }, indent=1, sort_keys=True))


def load_labels(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(event labels, account labels) from a labels file written by `simulate`."""
    data = json.loads(path.read_text())
    return dict(data["events"]), dict(data["accounts"])


def to_seed_format(event: dict[str, Any]) -> dict[str, Any]:
    """The original reference producer's record shape (string values), keeping the event id."""
    ts = datetime.fromisoformat(event["ts"])
    return {"object_type": "transaction", "event_id": event["event_id"], "account": event["account_id"],
            "accountemail": event.get("email") or "", "phone": event.get("phone") or "",
            "merchant": event.get("merchant_id") or "", "transaction_amount": str(event["amount"]),
            "time": ts.strftime("%b %d, %Y, %H:%M:%S.") + f"{ts.microsecond // 1000:03d}"}


class _Builder:
    def __init__(self, seed: int, days: float) -> None:
        self.rng = random.Random(seed)
        self.span = timedelta(days=days)
        self.timeline: list[tuple[datetime, str | None, dict[str, Any]]] = []
        self.account_labels: dict[str, str] = {}
        self.merchants = {cat: [f"m-{cat}-{i:02d}" for i in range(n)] for cat, (n, _, _) in CATEGORIES.items()}

    def at(self, fraction: float) -> datetime:
        """A moment `fraction` of the way through the simulated period."""
        return START + self.span * fraction

    def add(self, ts: datetime, scenario: str | None, account: Account, amount: Decimal, **overrides: Any) -> None:
        event = {"account_id": account.account_id, "amount": str(amount), "ts": ts.isoformat(),
                 "merchant_id": overrides.pop("merchant_id", None) or self.merchant()[0],
                 "email": account.email, "phone": account.phone, "card_id": account.card_id,
                 "ip": account.ip, "device_id": account.devices[0],
                 "lat": round(account.city[1], 4), "lon": round(account.city[2], 4)}
        event.update(overrides)
        self.timeline.append((ts, scenario, {k: v for k, v in event.items() if v is not None}))
        if scenario:
            self.account_labels.setdefault(account.account_id, scenario)

    def merchant(self, category: str | None = None) -> tuple[str, str]:
        category = category or self.rng.choices(list(CATEGORY_WEIGHTS), list(CATEGORY_WEIGHTS.values()))[0]
        return self.rng.choice(self.merchants[category]), category

    def normal_amount(self, category: str) -> Decimal:
        _, mu, sigma = CATEGORIES[category]
        return Decimal(str(round(min(self.rng.lognormvariate(mu, sigma), 9000.0), 2)))

    def normal_moment(self) -> datetime:
        """A time with the daily rhythm: pick a day, then an hour by HOURLY weight."""
        days = max(1, math.ceil(self.span / timedelta(days=1)))
        while True:
            day = self.rng.randrange(days)
            hour = self.rng.choices(range(24), HOURLY)[0]
            ts = START + timedelta(days=day, hours=hour, seconds=self.rng.uniform(0, 3600))
            if ts < START + self.span:
                return ts


def _account(rng: random.Random, index: int, prefix: str = "acct") -> Account:
    name = f"{prefix}-{index:05d}"
    city = rng.choice(CITIES)
    return Account(name, f"{name}@mail.example", f"+4915{index:07d}", f"card-{name}",
                   f"10.{index // 60000}.{(index // 250) % 240}.{index % 250}",
                   [f"dev-{name}-{k}" for k in range(rng.choice([1, 1, 1, 2]))],
                   (city[0], city[1] + rng.uniform(-0.1, 0.1), city[2] + rng.uniform(-0.1, 0.1)),
                   rng.uniform(0.5, 6.0))


def simulate(*, seed: int = 7, accounts: int = 1000, days: float = 3.0) -> SimulatedStream:
    """Normal traffic of `accounts` accounts over `days`, plus every fraud scenario."""
    if accounts < 50:
        raise ValueError("simulate needs at least 50 accounts")
    if days < 1:
        raise ValueError("simulate needs at least one day (the slow mule ring spreads over days)")
    b = _Builder(seed, days)
    rng = b.rng
    population = [_account(rng, i) for i in range(accounts)]
    _legitimate_sharing(rng, population)
    for account in population:
        for _ in range(_poisson(rng, account.activity * days)):
            merchant, category = b.merchant()
            device = rng.choice(account.devices)
            b.add(b.normal_moment(), None, account, b.normal_amount(category), merchant_id=merchant, device_id=device,
                  ip=account.ip if rng.random() < 0.85 else _carrier_ip(rng))

    victims = iter(rng.sample(population, 40))
    _shared_ring(b, rng)
    _ip_fanout(b, [next(victims) for _ in range(9)])
    _card_testing(b, rng)
    _account_takeover(b, rng, [next(victims) for _ in range(3)])
    _structuring(b, rng, [next(victims) for _ in range(2)])
    _mule_ring(b, rng, days)
    _impossible_travel(b, rng, [next(victims) for _ in range(3)])

    stream = SimulatedStream(seed=seed, parameters={"accounts": accounts, "days": days})
    jittered = sorted(b.timeline, key=lambda item: item[0] + timedelta(seconds=rng.uniform(0, 2)))
    for index, (_, scenario, event) in enumerate(jittered):
        event_id = f"sim-{seed}-{index:07d}"
        stream.events.append({"event_id": event_id, **event})
        if scenario:
            stream.labels[event_id] = scenario
    stream.account_labels = dict(sorted(b.account_labels.items()))
    return stream


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _carrier_ip(rng: random.Random) -> str:
    return f"100.64.0.{rng.randrange(12)}"  # a mobile carrier's NAT: many accounts, legitimately


def _legitimate_sharing(rng: random.Random, population: list[Account]) -> None:
    for office in range(max(1, len(population) // 100)):  # offices: ~20 colleagues share one IP
        for account in rng.sample(population, 20):
            account.ip = f"192.0.2.{office % 250}"
    for _ in range(len(population) // 20):  # households: two accounts share a device
        a, b = rng.sample(population, 2)
        b.devices = [a.devices[0], *b.devices[1:]]


def _shared_ring(b: _Builder, rng: random.Random) -> None:
    members = [_account(rng, 90000 + i, "ring") for i in range(10)]
    for k, member in enumerate(members):
        member.email, member.phone = "shared@example-anycompany.com", "10001000"
        burst = b.at(0.3) + timedelta(minutes=7 * k)
        for j in range(3):
            b.add(burst + timedelta(seconds=40 * j), "shared_ring", member,
                  Decimal(rng.choice(["10000", "20000", "50000"])), merchant_id="m-electronics-00")


def _ip_fanout(b: _Builder, victims: list[Account]) -> None:
    start = b.at(0.45)
    for k, account in enumerate(victims):
        b.add(start + timedelta(seconds=50 * k), "ip_fanout", account, Decimal("49.99"),
              merchant_id="m-online-03", ip="203.0.113.7")


def _card_testing(b: _Builder, rng: random.Random) -> None:
    tester = _account(rng, 91000, "tester")
    tester.card_id = "card-stolen-4111"
    start = b.at(0.55)
    for k in range(16):
        b.add(start + timedelta(seconds=15 * k + rng.uniform(0, 5)), "card_testing", tester,
              Decimal(rng.choice(["0.50", "1.00", "1.99", "2.49"])), merchant_id="m-online-07")


def _account_takeover(b: _Builder, rng: random.Random, victims: list[Account]) -> None:
    for k, account in enumerate(victims):
        settle = b.at(0.05 + 0.02 * k)
        for j in range(6):  # some ordinary history before the takeover
            merchant, category = b.merchant("grocery")
            b.add(settle + timedelta(hours=2 * j), None, account, b.normal_amount(category), merchant_id=merchant)
        takeover = b.at(0.6 + 0.05 * k)
        stolen = {"device_id": f"dev-ato-{k}", "ip": f"198.51.100.{10 + k}"}
        b.add(takeover, "account_takeover", account, Decimal("25.00"), merchant_id="m-online-11", **stolen)
        for j in range(2):
            b.add(takeover + timedelta(minutes=10 + 5 * j), "account_takeover", account,
                  Decimal(str(rng.choice([1800, 2400, 3100]))), merchant_id="m-electronics-03", **stolen)


def _structuring(b: _Builder, rng: random.Random, accounts: list[Account]) -> None:
    for k, account in enumerate(accounts):
        start = b.at(0.15 + 0.3 * k)
        for j in range(5):
            b.add(start + timedelta(hours=3 * j + rng.uniform(0, 1)), "structuring", account,
                  Decimal(str(rng.choice([9400, 9650, 9800, 9950]))), merchant_id="m-travel-02")


def _mule_ring(b: _Builder, rng: random.Random, days: float) -> None:
    members = [_account(rng, 92000 + i, "mule") for i in range(9)]
    shared_devices = ["dev-mule-a", "dev-mule-b"]
    for k, member in enumerate(members):
        member.devices = [shared_devices[k % 2], *member.devices]
        for _ in range(max(2, int(days * 1.5))):  # about one moderate payment a day, spread out
            merchant, category = b.merchant(rng.choice(["online", "grocery"]))
            b.add(b.normal_moment(), "mule_ring", member, b.normal_amount(category), merchant_id=merchant,
                  device_id=rng.choice([shared_devices[0], shared_devices[1]]))


def _impossible_travel(b: _Builder, rng: random.Random, travellers: list[Account]) -> None:
    for k, account in enumerate(travellers):
        home = b.at(0.7 + 0.05 * k)
        merchant, category = b.merchant("restaurant")
        b.add(home, None, account, b.normal_amount(category), merchant_id=merchant)
        city = FAR_AWAY[k % len(FAR_AWAY)]
        b.add(home + timedelta(minutes=25 + 10 * k), "impossible_travel", account, Decimal("320.00"),
              merchant_id="m-travel-04", lat=city[1], lon=city[2], ip=f"203.0.113.{100 + k}")


def iter_lines(stream: SimulatedStream) -> Iterator[str]:
    for event in stream.events:
        yield json.dumps(event)
