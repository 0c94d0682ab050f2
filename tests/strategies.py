"""Hypothesis strategies: transaction streams drawn from small pools so windows fill up,
thresholds are crossed, timestamps tie and arrive out of order, keys are null, ids repeat."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from chalicelib.events import Transaction
from chalicelib.rules import load_rules_text

BASE = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

# One rule of every windowed kind (and list_match), with short windows and low thresholds.
PROPERTY_RULES = """
version: 1
lists:
  bad-ips: {values: ["ip-2"]}
rules:
  - {id: velocity-acct, kind: velocity, key: account_id, window: 2m, threshold: 2}
  - id: velocity-ip-big
    kind: velocity
    key: ip
    window: 5m
    threshold: 1
    where: [{field: amount, op: ge, value: 100}]
  - {id: fanout-ip, kind: fan_out, key: ip, distinct: account_id, window: 5m, threshold: 1}
  - {id: fanout-device, kind: fan_out, key: device_id, distinct: ip, window: 3m, threshold: 1}
  - {id: sum-acct, kind: sum_over, key: account_id, field: amount, window: 3m, threshold: 20000}
  - {id: spike-acct, kind: amount_spike, key: account_id, window: 10m, factor: 3, min_history: 2}
  - {id: spike-acct-z, kind: amount_spike, key: account_id, window: 10m, zscore: 1.5, min_history: 3}
  - {id: new-device, kind: first_seen, key: account_id, field: device_id, window: 10m, min_history: 1}
  - {id: travel, kind: geo_velocity, key: account_id, window: 30m, threshold: 500}
  - id: travel-flight
    kind: geo_velocity
    key: account_id
    window: 30m
    threshold: 50
    flight_speed_kmh: 900
    airport_hours: 0.005
  - {id: new-ip-fanout, kind: new_key_fan_out, key: ip, distinct: account_id, window: 10m, burst: 2m,
     threshold: 1, max_history: 1}
  - {id: bad-ip, kind: list_match, field: ip, list: bad-ips}
  - id: small-card
    kind: velocity
    key: card_id
    window: 1m
    threshold: 1
    where: [{field: amount, op: lt, value: 5}, {field: ip, op: exists, value: true}]
"""


def property_ruleset() -> Any:
    return load_rules_text(PROPERTY_RULES, name="property-rules.yaml")


ACCOUNTS = ["a", "b", "c"]
IPS = ["ip-1", "ip-2", "ip-3", None]
DEVICES = ["d-1", "d-2", None]
CARDS = ["k-1", "k-2", None]
AMOUNTS = [Decimal("1"), Decimal("4.99"), Decimal("100"), Decimal("500"), Decimal("9999.99"),
           Decimal("20000"), Decimal("0.10")]
PLACES = [(48.14, 11.58), (40.71, -74.01), (48.15, 11.60), None]


@st.composite
def transactions(draw: st.DrawFn, *, ids: st.SearchStrategy[str], max_offset_s: int = 900) -> Transaction:
    place = draw(st.sampled_from(PLACES))
    # Few distinct offsets: timestamps tie often; arrival order is the list order, so they are
    # out of order whenever a later-drawn offset is smaller.
    offset_ms = draw(st.integers(0, max_offset_s // 15)) * 15_000 + draw(st.sampled_from([0, 0, 1, 500]))
    return Transaction(
        event_id=draw(ids),
        ts=BASE + timedelta(milliseconds=offset_ms),
        account_id=draw(st.sampled_from(ACCOUNTS)),
        amount=draw(st.sampled_from(AMOUNTS)),
        ip=draw(st.sampled_from(IPS)),
        device_id=draw(st.sampled_from(DEVICES)),
        card_id=draw(st.sampled_from(CARDS)),
        lat=place[0] if place else None,
        lon=place[1] if place else None,
    )


@st.composite
def streams(draw: st.DrawFn, *, max_size: int = 40, max_offset_s: int = 900) -> list[Transaction]:
    """A stream in arrival order; about one event in ten re-uses an earlier event_id (a
    redelivery, sometimes with different content: the first delivery must win)."""
    size = draw(st.integers(1, max_size))
    out: list[Transaction] = []
    for index in range(size):
        if out and draw(st.integers(0, 9)) == 0:
            earlier = draw(st.sampled_from(out))
            same = draw(st.booleans())
            out.append(earlier if same else draw(transactions(ids=st.just(earlier.event_id),
                                                                 max_offset_s=max_offset_s)))
        else:
            out.append(draw(transactions(ids=st.just(f"e{index}"), max_offset_s=max_offset_s)))
    return out


@st.composite
def cuts(draw: st.DrawFn, length: int) -> list[int]:
    """Sorted cut points splitting a stream of `length` into batches."""
    points = draw(st.sets(st.integers(1, max(1, length - 1)), max_size=min(6, length)))
    return sorted(p for p in points if 0 < p < length)


def split(items: list[Any], points: list[int]) -> list[list[Any]]:
    bounds = [0, *points, len(items)]
    return [items[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def native_json(event: Transaction) -> bytes:
    return json.dumps(event.model_dump(mode="json")).encode()
