"""Hypothesis strategies for transactions and streams that make rules work hard.

Values come from small pools so windows fill up and thresholds are crossed; timestamps sit on a
grid (`tick`), so they tie and land exactly on window boundaries; a stream has a rate, a share
of late (out-of-order) events, of redeliveries (a repeated event_id, sometimes with different
content: the first delivery wins) and of injected fraud bursts (many events of one key in a few
seconds). Every knob is keyword-only; `streams(reading=ruleset)` fills exactly the fields the
rules read, with the values their `where` conditions test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from chalicelib.events import Transaction
from chalicelib.rules import RuleSet

DEFAULT_START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DEFAULT_ACCOUNTS: tuple[str, ...] = ("a", "b", "c")
DEFAULT_AMOUNTS: tuple[Decimal, ...] = (Decimal("0.10"), Decimal("1"), Decimal("4.99"), Decimal("100"),
                                        Decimal("500"), Decimal("9999.99"), Decimal("20000"))
#: Optional fields and their values (None: the field is absent). `attributes.NAME` works too.
DEFAULT_POOLS: Mapping[str, Sequence[Any]] = {
    "ip": ("ip-1", "ip-2", "ip-3", None),
    "device_id": ("d-1", "d-2", None),
    "card_id": ("k-1", "k-2", None),
    "merchant_id": ("m-1", "m-2"),
}
#: (lat, lon) or None; two places 800 m apart and one an ocean away.
DEFAULT_PLACES: tuple[tuple[float, float] | None, ...] = ((48.14, 11.58), (48.15, 11.60), (40.71, -74.01), None)
_NUMERIC = {"amount", "lat", "lon"}


def _per_mille(fraction: float) -> int:
    if not 0 <= fraction <= 1:
        raise ValueError(f"a fraction must be between 0 and 1, got {fraction}")
    return round(fraction * 1000)


def _event(event_id: str, ts: datetime, account: str, amount: Decimal, place: tuple[float, float] | None,
           fields: Mapping[str, Any]) -> Transaction:
    plain = {k: v for k, v in fields.items() if not k.startswith("attributes.") and v is not None}
    attributes = {k.removeprefix("attributes."): v for k, v in fields.items()
                  if k.startswith("attributes.") and v is not None}
    return Transaction(event_id=event_id, ts=ts, account_id=account, amount=amount,
                       lat=place[0] if place else None, lon=place[1] if place else None,
                       attributes=attributes, **plain)


@st.composite
def transactions(draw: st.DrawFn, *, event_ids: st.SearchStrategy[str] | None = None,
                 accounts: Sequence[str] = DEFAULT_ACCOUNTS, amounts: Sequence[Decimal] = DEFAULT_AMOUNTS,
                 pools: Mapping[str, Sequence[Any]] = DEFAULT_POOLS,
                 places: Sequence[tuple[float, float] | None] = DEFAULT_PLACES,
                 start: datetime = DEFAULT_START, tick: timedelta = timedelta(seconds=15), ticks: int = 60,
                 jitter_ms: Sequence[int] = (0, 0, 1, 500)) -> Transaction:
    """One transaction at `start + k * tick + jitter` (k < `ticks`), its fields drawn from the pools."""
    jitter = timedelta(milliseconds=draw(st.sampled_from(jitter_ms)))
    ts = start + draw(st.integers(0, max(0, ticks - 1))) * tick + jitter
    return _event(draw(st.uuids().map(str) if event_ids is None else event_ids), ts, draw(st.sampled_from(accounts)),
                  draw(st.sampled_from(amounts)), draw(st.sampled_from(places)),
                  {name: draw(st.sampled_from(values)) for name, values in pools.items()})


@st.composite
def streams(draw: st.DrawFn, *, min_size: int = 1, max_size: int = 40, reading: RuleSet | None = None,
            accounts: Sequence[str] = DEFAULT_ACCOUNTS, amounts: Sequence[Decimal] | None = None,
            pools: Mapping[str, Sequence[Any]] | None = None,
            places: Sequence[tuple[float, float] | None] = DEFAULT_PLACES,
            start: datetime = DEFAULT_START, tick: timedelta = timedelta(seconds=15),
            events_per_minute: float = 4.0, out_of_order: float = 0.2, max_delay: timedelta = timedelta(minutes=5),
            duplicates: float = 0.1, bursts: float = 0.0, burst_size: tuple[int, int] = (3, 10),
            burst_spacing: timedelta = timedelta(seconds=1), burst_amounts: Sequence[Decimal] | None = None,
            jitter_ms: Sequence[int] = (0, 0, 1, 500)) -> list[Transaction]:
    """A stream in arrival order, `min_size`..`max_size` deliveries long.

    * `events_per_minute`: the mean rate; gaps are whole ticks, so a high rate means ties;
    * `out_of_order`: share of events whose `ts` is up to `max_delay` (whole ticks) before the clock;
    * `duplicates`: share of deliveries that repeat an earlier event_id (half of them with
      different content - the first delivery must win);
    * `bursts`: share of positions that start a burst of `burst_size` events of one account,
      card, device and IP, `burst_spacing` apart (card testing, takeover, velocity fraud);
    * `reading`: fill the fields the ruleset's rules read (keys, `distinct`, `field`, `where`),
      with the values their conditions compare against; `pools` and `amounts` override.
    """
    derived_pools, derived_amounts = pools_for(reading) if reading is not None else (DEFAULT_POOLS, DEFAULT_AMOUNTS)
    pools = derived_pools if pools is None else pools
    amounts = derived_amounts if amounts is None else amounts
    late, repeat, burst = _per_mille(out_of_order), _per_mille(duplicates), _per_mille(bursts)
    mean_gap_ticks = 60.0 / events_per_minute / tick.total_seconds()
    max_gap = max(1, round(2 * mean_gap_ticks))
    max_delay_ticks = max(1, int(max_delay / tick))

    size = draw(st.integers(min_size, max_size))
    out: list[Transaction] = []
    clock = start
    while len(out) < size:
        position = len(out)
        if out and repeat and draw(st.integers(0, 999)) < repeat:
            earlier = draw(st.sampled_from(out))
            if draw(st.booleans()):
                out.append(earlier)
            else:
                out.append(draw(transactions(event_ids=st.just(earlier.event_id), accounts=accounts, amounts=amounts,
                                             pools=pools, places=places, start=clock, ticks=1)))
            continue
        if burst and draw(st.integers(0, 999)) < burst:
            account = draw(st.sampled_from(accounts))
            shared = {name: draw(st.sampled_from(values)) for name, values in pools.items()}
            place = draw(st.sampled_from(places))
            length = draw(st.integers(*burst_size))
            for j in range(min(length, size - position)):
                out.append(_event(f"e{position + j}", clock + j * burst_spacing, account,
                                  draw(st.sampled_from(burst_amounts or amounts)), place, shared))
            clock += length * burst_spacing
            continue
        ts = clock
        if late and draw(st.integers(0, 999)) < late:
            ts -= draw(st.integers(1, max_delay_ticks)) * tick
        ts += timedelta(milliseconds=draw(st.sampled_from(jitter_ms)))
        out.append(draw(transactions(event_ids=st.just(f"e{position}"), accounts=accounts, amounts=amounts,
                                     pools=pools, places=places, start=ts, ticks=1, jitter_ms=(0,))))
        clock += draw(st.integers(0, max_gap)) * tick
    return out


@st.composite
def batch_cuts(draw: st.DrawFn, length: int, *, max_batches: int = 7) -> list[int]:
    """Sorted positions cutting a stream of `length` into at most `max_batches` batches."""
    if length < 2:
        return []
    points = draw(st.sets(st.integers(1, length - 1), max_size=min(max_batches - 1, length - 1)))
    return sorted(points)


def conditions(*, amounts: Sequence[Decimal] = DEFAULT_AMOUNTS,
               pools: Mapping[str, Sequence[Any]] = DEFAULT_POOLS) -> st.SearchStrategy[dict[str, Any]]:
    """A `where` condition (as written in rules.yaml) on `amount` or one of the pooled fields."""
    on_amount = st.builds(lambda op, value: {"field": "amount", "op": op, "value": str(value)},
                          st.sampled_from(["gt", "ge", "lt", "le", "eq", "ne"]), st.sampled_from(amounts))
    pooled = [name for name, values in pools.items() if any(v is not None for v in values)]
    if not pooled:
        return on_amount

    @st.composite
    def on_field(draw: st.DrawFn) -> dict[str, Any]:
        name = draw(st.sampled_from(pooled))
        values = [v for v in pools[name] if v is not None]
        op = draw(st.sampled_from(["eq", "ne", "in", "exists"]))
        if op == "exists":
            return {"field": name, "op": op, "value": draw(st.booleans())}
        if op == "in":
            return {"field": name, "op": op, "value": draw(st.lists(st.sampled_from(values), min_size=1, max_size=2))}
        return {"field": name, "op": op, "value": draw(st.sampled_from(values))}

    return st.one_of(on_amount, on_field())


def pools_for(ruleset: RuleSet) -> tuple[dict[str, tuple[Any, ...]], tuple[Decimal, ...]]:
    """(pools, amounts) covering the fields the ruleset's rules read: small pools for keys and
    `distinct` fields, and each `where` value plus a value beside it, so conditions both hold and fail."""
    pools: dict[str, list[Any]] = {k: list(v) for k, v in DEFAULT_POOLS.items()}
    amounts: set[Decimal] = set(DEFAULT_AMOUNTS)
    for config in ruleset.configs:
        for attr in ("key", "distinct", "field"):
            name = getattr(config, attr, None)
            if isinstance(name, str) and name not in _NUMERIC and name != "account_id" and name not in pools:
                short = name.removeprefix("attributes.")
                pools[name] = [f"{short}-1", f"{short}-2", None]
        for condition in config.where:
            wanted = condition.value if isinstance(condition.value, list) else [condition.value]
            if condition.field == "amount":
                for value in wanted:
                    if isinstance(value, int | float | str | Decimal) and not isinstance(value, bool):
                        try:
                            exact = Decimal(str(value))
                        except ArithmeticError:
                            continue
                        amounts.update({exact, exact + Decimal("0.01"), max(Decimal(0), exact - Decimal("0.01"))})
            elif condition.field not in _NUMERIC and condition.field != "account_id":
                pool = pools.setdefault(condition.field, [None])
                for value in wanted:
                    if not isinstance(value, bool) and value not in pool:
                        pool.append(value)
                if None not in pool:
                    pool.append(None)
                if len([v for v in pool if v is not None]) < 2:
                    pool.append(f"other-{condition.field.removeprefix('attributes.')}")
    return {k: tuple(v) for k, v in pools.items()}, tuple(sorted(amounts))


__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_AMOUNTS",
    "DEFAULT_PLACES",
    "DEFAULT_POOLS",
    "DEFAULT_START",
    "batch_cuts",
    "conditions",
    "pools_for",
    "streams",
    "transactions",
]
