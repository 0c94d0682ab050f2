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
* `impossible_travel`- a card present at home and, minutes later, on another continent;
* `hubless_ring`     - a ring without a hub: each member shares one identifier (a device, a phone
                       or a card) with the next, in a cycle or a chain, pays like a normal customer
                       for days, then cashes out with a few larger payments;
* `identity_cluster` - new accounts reusing a ring member's device and phone;
* `card_testing_spread` - several cards over a few accounts tried on one merchant, each card below
                       the per-card threshold;
* `value_burst`      - an established customer's account pays several times its habit within the
                       hour, from its usual device;
* `scam_payee`       - authorised push-payment scams: a payee nobody paid before collects a few
                       hundred from 10-14 unrelated customers within a few hours, each customer on
                       their own device, IP and city (the customers' accounts are the labelled ones).

The later four families come in two parameter settings each (sizes, link kinds, shapes), drawn
from their own random generator so the earlier scenarios' events stay what they were.

Legitimate look-alikes (normal, unlabelled, listed in `lookalikes` so their false positives can be
counted): offices sharing an IP (20 colleagues, and 4% and 6% of all customers), households sharing a device, families
sharing a device *and* a phone (2-4 people), one-off large purchases (one payment of 6-12x the
customer's habit), and `varying_identifiers`: customers whose e-mail and phone are drawn at random
per transaction from small pools (like the AWS reference producer's ordinary accounts), so most of
those e-mails and phones are shared by several of them by chance. `regular_payee`: customers
paying a utility or a school that many of them pay on the same morning (regular amounts, a payee
paid every day before); `traveller`: customers paying at their home airport, then (half of them)
at the arrival airport and at a hotel on another continent 6-10 hours later, at real flight
speeds (gate to gate 780-940 km/h, with time at both airports), and abroad from then on.

`scam_payee`, `regular_payee` and `traveller` come last, from their own random generator.

Same seed, same stream. Arrival order is time order with up to two seconds of network jitter.

Size: every family is a short generator here, next to the normal behaviour it must be told
apart from, so the stream's whole story reads in one place.
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
             "impossible_travel", "hubless_ring", "identity_cluster", "card_testing_spread", "value_burst",
             "scam_payee")
LOOKALIKES = ("office_ip", "household_device", "family", "one_off_purchase", "varying_identifiers", "regular_payee",
              "traveller")

#: the legitimate payees many customers pay on one morning: (name, their regular amount)
REGULAR_PAYEES = (("utility", Decimal("84.50")), ("school", Decimal("350.00")))
#: event ids of the lead-in (`simulate(lead_in_days=...)`): `sim-SEED-lead-N`
LEAD_IN_PREFIX = "sim-{seed}-lead-"
MIN_ACCOUNTS = 50
MIN_DAYS = 1.0  # the slow mule ring spreads over days
MAX_DAYS = 366.0  # for the period and for the lead-in: a year of traffic is already millions of events

CITIES = [("Munich", 48.14, 11.58), ("Berlin", 52.52, 13.40), ("Paris", 48.86, 2.35), ("Madrid", 40.42, -3.70),
          ("Milan", 45.46, 9.19), ("Vienna", 48.21, 16.37), ("Amsterdam", 52.37, 4.90), ("Warsaw", 52.23, 21.01)]
FAR_AWAY = [("Sydney", -33.87, 151.21), ("Sao Paulo", -23.55, -46.63), ("Tokyo", 35.68, 139.69)]
#: long-haul destinations a traveller from Europe reaches in 5-9 hours of flight
LONG_HAUL = [("New York", 40.71, -74.01), ("Dubai", 25.20, 55.27), ("Lagos", 6.45, 3.39), ("Montreal", 45.50, -73.57)]
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
    lookalikes: dict[str, str] = field(default_factory=dict)  # normal account -> look-alike family
    lead_in_events: int = 0  # the first events: the lead-in before the evaluated period (unlabelled)

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
            "events": self.labels, "accounts": self.account_labels, "lookalikes": self.lookalikes,
            **({"lead_in": {"events": self.lead_in_events, "event_id_prefix": LEAD_IN_PREFIX.format(seed=self.seed)}}
               if self.lead_in_events else {}),
        }, indent=1, sort_keys=True))


def load_labels(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(event labels, account labels) from a labels file written by `simulate`; ValueError saying
    what is wrong with any other file (not JSON, not UTF-8, another shape)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    shape = '{"events": {EVENT_ID: SCENARIO, ...}, "accounts": {ACCOUNT_ID: SCENARIO, ...}}'
    if not isinstance(data, dict):
        raise ValueError(f"expected {shape}, found a JSON {type(data).__name__}")
    for part in ("events", "accounts"):
        labels = data.get(part)
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ValueError(f'"{part}" must map ids to scenario names: expected {shape}')
    return dict(data["events"]), dict(data["accounts"])


def to_seed_format(event: dict[str, Any]) -> dict[str, Any]:
    """The original reference producer's record shape (string values), keeping the event id."""
    ts = datetime.fromisoformat(event["ts"])
    return {"object_type": "transaction", "event_id": event["event_id"], "account": event["account_id"],
            "accountemail": event.get("email") or "", "phone": event.get("phone") or "",
            "merchant": event.get("merchant_id") or "", "transaction_amount": str(event["amount"]),
            "time": ts.strftime("%b %d, %Y, %H:%M:%S.") + f"{ts.microsecond // 1000:03d}"}


class _Builder:
    def __init__(self, seed: int, days: float, *, start: datetime = START) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.span = timedelta(days=days)
        self.timeline: list[tuple[datetime, str | None, dict[str, Any]]] = []
        self.account_labels: dict[str, str] = {}
        self.merchants = {cat: [f"m-{cat}-{i:02d}" for i in range(n)] for cat, (n, _, _) in CATEGORIES.items()}

    def at(self, fraction: float) -> datetime:
        """A moment `fraction` of the way through the simulated period."""
        return self.start + self.span * fraction

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
            ts = self.start + timedelta(days=day, hours=hour, seconds=self.rng.uniform(0, 3600))
            if ts < self.start + self.span:
                return ts


def _account(rng: random.Random, index: int, prefix: str = "acct") -> Account:
    name = f"{prefix}-{index:05d}"
    city = rng.choice(CITIES)
    return Account(name, f"{name}@mail.example", f"+4915{index:07d}", f"card-{name}",
                   f"10.{index // 60000}.{(index // 250) % 240}.{index % 250}",
                   [f"dev-{name}-{k}" for k in range(rng.choice([1, 1, 1, 2]))],
                   (city[0], city[1] + rng.uniform(-0.1, 0.1), city[2] + rng.uniform(-0.1, 0.1)),
                   rng.uniform(0.5, 6.0))


def simulation_problems(accounts: int, days: float, lead_in_days: float) -> list[str]:
    """Why `simulate` cannot run with these sizes (empty: it can). NaN and infinity are refused."""
    problems = []
    if accounts < MIN_ACCOUNTS:
        problems.append(f"simulate needs at least {MIN_ACCOUNTS} accounts")
    if not MIN_DAYS <= days <= MAX_DAYS:  # False for NaN
        problems.append(f"simulate needs between {MIN_DAYS:g} and {MAX_DAYS:g} days "
                        "(the slow mule ring spreads over days)")
    if lead_in_days != 0 and not MIN_DAYS <= lead_in_days <= MAX_DAYS:  # a shorter one finds no moment to draw
        problems.append(f"a lead-in is 0 or between {MIN_DAYS:g} and {MAX_DAYS:g} days")
    return problems


def simulate(*, seed: int = 7, accounts: int = 1000, days: float = 3.0, lead_in_days: float = 0.0) -> SimulatedStream:
    """Normal traffic of `accounts` accounts over `days`, plus every fraud scenario; with
    `lead_in_days`, the same customers' normal traffic (and the regular payees' daily payments)
    over that many days before, so a store fed the stream has watched them that long (rules that
    judge the absence of history, `new_key_fan_out`, wait for it). The lead-in is unlabelled, comes
    first, has its own ids (`sim-SEED-lead-N`) and its own random generator: the evaluated period's
    events are the same with or without it."""
    if problems := simulation_problems(accounts, days, lead_in_days):
        raise ValueError("; ".join(problems))
    b = _Builder(seed, days)
    rng = b.rng
    extra = random.Random(seed * 7919 + 104729)  # the later families' own draws
    population = [_account(rng, i) for i in range(accounts)]
    lookalikes = _legitimate_sharing(rng, population)
    lookalikes.update(_lookalike_sharing(extra, population, lookalikes))
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

    spare = [a for a in population if lookalikes.get(a.account_id) != "family" and a.account_id not in b.account_labels]
    established = iter(extra.sample(sorted(spare, key=lambda a: -a.activity)[:max(8, len(spare) // 3)], 8))
    rings = [_hubless_ring(b, extra, 0, size=6, kinds=("device_id", "phone"), cycle=True),
             _hubless_ring(b, extra, 1, size=8, kinds=("phone", "card_id", "device_id"), cycle=False)]
    _identity_cluster(b, extra, rings[0][0], 0, size=3)
    _identity_cluster(b, extra, rings[1][3], 1, size=4)
    _card_testing_spread(b, extra, 0, accounts=2, cards_each=2, tries=5)
    _card_testing_spread(b, extra, 1, accounts=3, cards_each=2, tries=6)
    for k in range(2):
        _value_burst(b, extra, next(established), payments=2, factor=10.0, minutes=30, at=0.5 + 0.2 * k)
        _value_burst(b, extra, next(established), payments=3, factor=6.0, minutes=60, at=0.6 + 0.2 * k)
    for k in range(4):
        account = next(established)
        _one_off_purchase(b, extra, account, factor=6.0 + 2 * k, at=0.55 + 0.1 * k)
        lookalikes[account.account_id] = "one_off_purchase"
    # last, from its own generator: the events above (and their jitter draws) stay what they were
    lookalikes.update(_varying_identifiers(b, random.Random(seed * 104729 + 21), max(10, accounts // 40), days))
    # the payee and travel families, from their own generator: everything above stays as it was
    lookalikes.update(_payees_and_travellers(b, random.Random(seed * 15485863 + 7), population, lookalikes))

    parameters: dict[str, Any] = {"accounts": accounts, "days": days}
    if lead_in_days > 0:
        parameters["lead_in_days"] = lead_in_days
    stream = SimulatedStream(seed=seed, parameters=parameters)
    stream.lookalikes = {a: f for a, f in sorted(lookalikes.items()) if a not in b.account_labels}
    if lead_in_days > 0:
        lead = _lead_in(seed, population, lead_in_days)
        stream.events.extend({"event_id": f"{LEAD_IN_PREFIX.format(seed=seed)}{index:07d}", **event}
                             for index, event in enumerate(lead))
        stream.lead_in_events = len(lead)
    jittered = sorted(b.timeline, key=lambda item: item[0] + timedelta(seconds=rng.uniform(0, 2)))
    for index, (_, scenario, event) in enumerate(jittered):
        event_id = f"sim-{seed}-{index:07d}"
        stream.events.append({"event_id": event_id, **event})
        if scenario:
            stream.labels[event_id] = scenario
    stream.account_labels = dict(sorted(b.account_labels.items()))
    return stream


def _lead_in(seed: int, population: list[Account], days: float) -> list[dict[str, Any]]:
    """The customers' normal traffic over `days` before START (their offices, households and
    families as they are in the period), and the utility's and the school's daily payments: what
    a store that has been running that long has seen. No fraud, no new customer, no scam payee."""
    lead = _Builder(seed * 48271 + 30, days, start=START - timedelta(days=days))
    rng = lead.rng
    for account in population:
        for _ in range(_poisson(rng, account.activity * days)):
            merchant, category = lead.merchant()
            lead.add(lead.normal_moment(), None, account, lead.normal_amount(category), merchant_id=merchant,
                     device_id=rng.choice(account.devices), ip=account.ip if rng.random() < 0.85 else _carrier_ip(rng))
    for name, amount in REGULAR_PAYEES:
        for _ in range(6 * max(1, math.ceil(days))):
            lead.add(lead.normal_moment(), None, rng.choice(population), amount, merchant_id=f"m-payee-{name}")
    jittered = sorted(lead.timeline, key=lambda item: item[0] + timedelta(seconds=rng.uniform(0, 2)))
    return [event for _, _, event in jittered]


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _carrier_ip(rng: random.Random) -> str:
    return f"100.64.0.{rng.randrange(12)}"  # a mobile carrier's NAT: many accounts, legitimately


def _legitimate_sharing(rng: random.Random, population: list[Account]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for office in range(max(1, len(population) // 100)):  # offices: ~20 colleagues share one IP
        for account in rng.sample(population, 20):
            account.ip = f"192.0.2.{office % 250}"
            tags[account.account_id] = "office_ip"
    for _ in range(len(population) // 20):  # households: two accounts share a device
        a, b = rng.sample(population, 2)
        b.devices = [a.devices[0], *b.devices[1:]]
        tags.setdefault(a.account_id, "household_device")
        tags.setdefault(b.account_id, "household_device")
    return tags


def _lookalike_sharing(rng: random.Random, population: list[Account], taken: dict[str, str]) -> dict[str, str]:
    """Big offices (40 and 60 colleagues on one IP) and families sharing a device and a phone."""
    tags: dict[str, str] = {}
    free = [a for a in population if a.account_id not in taken]
    rng.shuffle(free)
    for office, size in enumerate((max(5, len(population) // 25), max(5, len(population) // 16))):
        for account in free[:size]:
            account.ip = f"192.0.2.{200 + office}"
            tags[account.account_id] = "office_ip"
        free = free[size:]
    for size in (2, 3, 3, 4, 4):
        if len(free) < size + 8:  # keep a few customers for the bursts and one-offs
            break
        head, *rest = free[:size]
        for member in rest:
            member.phone = head.phone
            member.devices = [head.devices[0], *member.devices[1:]]
        for member in free[:size]:
            tags[member.account_id] = "family"
        free = free[size:]
    return tags


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


def _hubless_ring(b: _Builder, rng: random.Random, ring: int, *, size: int, kinds: tuple[str, ...],
                  cycle: bool) -> list[Account]:
    """Member i shares an identifier of kind kinds[i % len(kinds)] with member i + 1 (and the last
    with the first in a cycle); consecutive links differ in kind, so no member needs two phones."""
    members = [_account(rng, 93000 + 20 * ring + i, "hubring") for i in range(size)]
    for i in range(size if cycle else size - 1):
        kind, left, right = kinds[i % len(kinds)], members[i], members[(i + 1) % size]
        shared = f"{kind}-hubring-{ring}-{i}"
        if kind == "device_id":
            left.devices = [shared, *left.devices]
            right.devices = [shared, *right.devices]
        elif kind == "phone":
            shared = f"+4917{ring}{i:05d}"
            left.phone = right.phone = shared
        else:
            left.card_id = right.card_id = shared
    days = max(1, math.ceil(b.span / timedelta(days=1)))
    for member in members:
        for _ in range(2 * days):  # like a normal customer, on each of its devices
            merchant, category = b.merchant()
            ts = b.normal_moment()
            if ts < b.at(0.8):
                b.add(ts, "hubless_ring", member, b.normal_amount(category), merchant_id=merchant,
                      device_id=rng.choice(member.devices))
        cash_out = b.at(rng.uniform(0.82, 0.97))
        for j in range(rng.choice([1, 2])):
            merchant, _ = b.merchant(rng.choice(["electronics", "travel"]))
            b.add(cash_out + timedelta(minutes=20 * j), "hubless_ring", member,
                  Decimal(str(rng.choice([900, 1400, 1900, 2500]))), merchant_id=merchant,
                  device_id=rng.choice(member.devices))
    return members


def _identity_cluster(b: _Builder, rng: random.Random, member: Account, cluster: int, *, size: int) -> None:
    for i in range(size):
        clone = _account(rng, 94000 + 20 * cluster + i, "clone")
        clone.devices, clone.phone = [member.devices[0]], member.phone
        for _ in range(rng.randint(2, 4)):
            merchant, category = b.merchant(rng.choice(["online", "electronics"]))
            b.add(b.at(rng.uniform(0.6, 0.97)), "identity_cluster", clone, b.normal_amount(category),
                  merchant_id=merchant)


def _card_testing_spread(b: _Builder, rng: random.Random, run: int, *, accounts: int, cards_each: int,
                         tries: int) -> None:
    testers = [_account(rng, 95000 + 10 * run + i, "spread") for i in range(accounts)]
    cards = [(t, f"card-spread-{run}-{i}-{c}") for i, t in enumerate(testers) for c in range(cards_each)]
    merchant, start = f"m-online-{12 + run:02d}", b.at(0.4 + 0.3 * run)
    for k in range(tries * len(cards)):
        tester, card = cards[k % len(cards)]
        b.add(start + timedelta(seconds=600 * k / (tries * len(cards)) + rng.uniform(0, 4)), "card_testing_spread",
              tester, Decimal(rng.choice(["0.50", "1.00", "1.99", "2.49"])), merchant_id=merchant, card_id=card)


def _habit(b: _Builder, account: Account, before: datetime) -> Decimal:
    amounts = [Decimal(e["amount"]) for ts, _, e in b.timeline if e["account_id"] == account.account_id and ts < before]
    return sum(amounts, Decimal(0)) / len(amounts) if amounts else Decimal(40)


def _value_burst(b: _Builder, rng: random.Random, account: Account, *, payments: int, factor: float,
                 minutes: int, at: float) -> None:
    start = b.at(at)
    habit = _habit(b, account, start)
    for j in range(payments):
        merchant, _ = b.merchant(rng.choice(["electronics", "online"]))
        amount = (habit * Decimal(str(factor * rng.uniform(0.9, 1.3)))).quantize(Decimal("0.01"))
        b.add(start + timedelta(minutes=minutes * j / payments), "value_burst", account, amount,
              merchant_id=merchant)


def _one_off_purchase(b: _Builder, rng: random.Random, account: Account, *, factor: float, at: float) -> None:
    start = b.at(at)
    merchant, _ = b.merchant(rng.choice(["electronics", "travel"]))
    amount = (_habit(b, account, start) * Decimal(str(factor))).quantize(Decimal("0.01"))
    b.add(start, None, account, amount, merchant_id=merchant)


def _varying_identifiers(b: _Builder, rng: random.Random, count: int, days: float) -> dict[str, str]:
    """`count` customers drawing an e-mail and a phone per transaction from pools of about half
    their number: ordinary payments, many chance collisions, no ring."""
    pool = max(4, count // 2)
    emails = [f"promo-{k:03d}@mail.example" for k in range(pool)]
    phones = [f"+4916{k:07d}" for k in range(pool)]
    tags = {}
    for index in range(count):
        account = _account(rng, 96000 + index, "varying")
        for _ in range(max(2, _poisson(rng, account.activity * days))):
            merchant, category = b.merchant()
            b.add(b.normal_moment(), None, account, b.normal_amount(category), merchant_id=merchant,
                  email=rng.choice(emails), phone=rng.choice(phones))
        tags[account.account_id] = "varying_identifiers"
    return tags


def _payees_and_travellers(b: _Builder, rng: random.Random, population: list[Account],
                           taken: dict[str, str]) -> dict[str, str]:
    """Two scam payees, two regular payees (a utility, a school) and twelve travellers, drawn
    from customers with no other role."""
    free = [a for a in population if a.account_id not in taken and a.account_id not in b.account_labels]
    rng.shuffle(free)
    tags: dict[str, str] = {}
    for k, payers in enumerate((10, 14)):  # scams: a new payee, unrelated customers, within hours
        start, hours = b.at(0.35 + 0.3 * k), rng.uniform(2.0, 4.0)
        for account in free[:payers]:
            b.add(start + timedelta(hours=rng.uniform(0, hours)), "scam_payee", account,
                  Decimal(rng.randrange(150, 900)), merchant_id=f"m-payee-new-{k}",
                  device_id=rng.choice(account.devices))
        free = free[payers:]
    days = max(1, math.ceil(b.span / timedelta(days=1)))
    for k, ((name, amount), payers) in enumerate(zip(REGULAR_PAYEES, (30, 20), strict=True)):
        merchant = f"m-payee-{name}"
        for _ in range(6 * days):  # paid every day by others: a payee with a history
            payer = rng.choice(population)
            b.add(b.normal_moment(), None, payer, amount, merchant_id=merchant)
        morning = b.at(0.5 + 0.2 * k).replace(hour=7, minute=0, second=0, microsecond=0)
        for account in free[:payers]:
            b.add(morning + timedelta(hours=rng.uniform(0, 4)), None, account, amount, merchant_id=merchant,
                  device_id=rng.choice(account.devices))
            tags[account.account_id] = "regular_payee"
        free = free[payers:]
    for index in range(12):  # travellers: home airport, (arrival airport,) hotel, then days abroad
        account = _account(rng, 97000 + index, "traveller")
        destination = rng.choice(LONG_HAUL)
        here = (account.city[1] + rng.uniform(-0.15, 0.15), account.city[2] + rng.uniform(-0.15, 0.15))
        there = (destination[1] + rng.uniform(-0.1, 0.1), destination[2] + rng.uniform(-0.1, 0.1))
        distance = _great_circle_km(*here, *there)
        boarding = b.at(rng.uniform(0.1, 0.85))
        landing = boarding + timedelta(hours=rng.uniform(0.2, 1.5) + distance / rng.uniform(780, 940))
        hotel = landing + timedelta(hours=rng.uniform(1.0, 2.5))
        for _ in range(max(2, _poisson(rng, account.activity * b.span / timedelta(days=1)))):
            merchant, category = b.merchant()
            ts = b.normal_moment()
            if ts < boarding - timedelta(hours=1) or ts > hotel:  # at home before, abroad after
                place = here if ts < boarding else there
                b.add(ts, None, account, b.normal_amount(category), merchant_id=merchant,
                      lat=round(place[0], 4), lon=round(place[1], 4))
        b.add(boarding, None, account, b.normal_amount("restaurant"), merchant_id=b.merchant("restaurant")[0],
              lat=round(here[0], 4), lon=round(here[1], 4))
        if rng.random() < 0.5:
            b.add(landing + timedelta(hours=rng.uniform(0.2, 1.0)), None, account, b.normal_amount("restaurant"),
                  merchant_id=b.merchant("restaurant")[0], lat=round(there[0], 4), lon=round(there[1], 4),
                  ip=_carrier_ip(rng))
        b.add(hotel, None, account, b.normal_amount("travel"), merchant_id=b.merchant("travel")[0],
              lat=round(there[0], 4), lon=round(there[1], 4), ip=_carrier_ip(rng))
        tags[account.account_id] = "traveller"
    return tags


def _great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))


def iter_lines(stream: SimulatedStream) -> Iterator[str]:
    for event in stream.events:
        yield json.dumps(event)
