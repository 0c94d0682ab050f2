"""Hand-computed cases for each kind's `judge` and for `where` conditions."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.events import Transaction
from chalicelib.rules import load_rules_text
from chalicelib.rules.base import Condition
from chalicelib.rules.geo_velocity import haversine_km


def tx(i: int, *, ts_s: float | None = None, **fields: Any) -> Transaction:
    fields.setdefault("account_id", "a")
    fields.setdefault("amount", 10)
    return Transaction(event_id=f"e{i}", ts=int((ts_s if ts_s is not None else i) * 1000), **fields)


def rule(yaml_rule: str, lists: str = "") -> Any:
    text = f"version: 1\n{lists}rules:\n  - " + textwrap.dedent(yaml_rule).strip().replace("\n", "\n    ")
    return load_rules_text(text).rules[0]


def test_velocity_fires_strictly_above_threshold() -> None:
    r = rule("{id: v, kind: velocity, window: 1m, threshold: 2}")
    window = [tx(0), tx(1), tx(2)]
    assert r.judge(window[1], window[:2]) is None  # 2 is not > 2
    finding = r.judge(window[2], window)
    assert finding is not None and finding.value == 3 and finding.threshold == 2
    assert finding.evidence["event_ids"] == ["e0", "e1", "e2"]


def test_fan_out_counts_distinct_non_null_values() -> None:
    r = rule("{id: f, kind: fan_out, key: ip, distinct: account_id, window: 10m, threshold: 2}")
    w = [tx(0, ip="1", account_id="a"), tx(1, ip="1", account_id="a"), tx(2, ip="1", account_id="b")]
    assert r.judge(w[2], w) is None  # {a, b}
    w.append(tx(3, ip="1", account_id="c"))
    finding = r.judge(w[3], w)
    assert finding is not None and finding.value == 3 and finding.evidence["distinct_values"] == ["a", "b", "c"]


def test_sum_over_is_exact_in_decimal() -> None:
    r = rule("{id: s, kind: sum_over, field: amount, window: 5m, threshold: 0.3}")
    w = [tx(0, amount="0.1"), tx(1, amount="0.1"), tx(2, amount="0.1")]
    assert r.judge(w[2], w) is None  # 0.1 + 0.1 + 0.1 == 0.3 exactly, not 0.30000000000000004
    w.append(tx(3, amount="0.01"))
    finding = r.judge(w[3], w)
    assert finding is not None and finding.value == pytest.approx(0.31)


def test_amount_spike_excludes_the_event_from_its_baseline() -> None:
    r = rule("{id: s, kind: amount_spike, window: 24h, factor: 3, min_history: 3}")
    base = [tx(0, amount=100), tx(1, amount=100), tx(2, amount=100)]
    assert r.judge(tx(3, amount=300), [*base, tx(3, amount=300)]) is None  # 300 is not > 3 x 100
    finding = r.judge(tx(3, amount=301), [*base, tx(3, amount=301)])
    assert finding is not None and finding.value == 301 and finding.threshold == 300
    assert finding.evidence["baseline_count"] == 3
    assert r.judge(tx(2, amount=1000), [*base[:2], tx(2, amount=1000)]) is None  # min_history


def test_amount_spike_zscore() -> None:
    r = rule("{id: z, kind: amount_spike, window: 24h, zscore: 2, min_history: 4}")
    base = [tx(i, amount=a) for i, a in enumerate([90, 110, 90, 110])]  # mean 100, stddev 10
    assert r.judge(tx(9, amount=120), [*base, tx(9, amount=120)]) is None  # z = 2, not > 2
    finding = r.judge(tx(9, amount=121), [*base, tx(9, amount=121)])
    assert finding is not None and finding.value == pytest.approx(2.1)
    flat = [tx(i, amount=100) for i in range(4)]
    assert r.judge(tx(9, amount=10_000), [*flat, tx(9, amount=10_000)]) is None  # stddev 0: not judged


def test_first_seen_needs_history_and_a_new_value() -> None:
    r = rule("{id: n, kind: first_seen, field: device_id, window: 30d, min_history: 2}")
    w = [tx(0, device_id="d1"), tx(1)]
    assert r.judge(tx(2, device_id="d2"), [*w[:1], tx(2, device_id="d2")]) is None  # 1 earlier < 2
    finding = r.judge(tx(2, device_id="d2"), [*w, tx(2, device_id="d2")])
    assert finding is not None and finding.evidence["known_values"] == ["d1"]
    assert r.judge(tx(2, device_id="d1"), [*w, tx(2, device_id="d1")]) is None
    assert r.edge_ends() == ("account_id", "device_id")


def test_geo_velocity_uses_the_latest_located_earlier_event() -> None:
    r = rule("{id: g, kind: geo_velocity, window: 6h, threshold: 900, min_distance_km: 50}")
    munich, new_york = (48.14, 11.58), (40.71, -74.01)
    distance = haversine_km(*munich, *new_york)
    assert 6400 < distance < 6600
    w = [tx(0, ts_s=0, lat=munich[0], lon=munich[1]), tx(1, ts_s=1800)]  # the second has no coordinates
    later = tx(2, ts_s=3600, lat=new_york[0], lon=new_york[1])  # an hour after Munich
    finding = r.judge(later, [*w, later])
    assert finding is not None and finding.value == pytest.approx(distance, rel=1e-6)
    slow = tx(3, ts_s=8 * 3600, lat=new_york[0], lon=new_york[1])
    assert r.judge(slow, [w[0], slow]) is None  # 6500 km in 8 h = 812 km/h
    near = tx(4, ts_s=10, lat=48.15, lon=11.60)
    assert r.judge(near, [w[0], near]) is None  # under min_distance_km


def test_list_match_with_and_without_case() -> None:
    lists = "lists:\n  bad: {values: [Mallory@Example.com]}\n"
    exact = rule("{id: l, kind: list_match, field: email, list: bad}", lists)
    folded = rule("{id: l, kind: list_match, field: email, list: bad, ignore_case: true}", lists)
    event = tx(0, email="mallory@example.com")
    assert exact.judge(event, (event,)) is None
    assert folded.judge(event, (event,)) is not None
    assert exact.key_field == "email"


@pytest.mark.parametrize(("field", "op", "value", "event", "holds"), [
    ("amount", "eq", 500, tx(0, amount="500.00"), True),
    ("amount", "gt", 499.99, tx(0, amount="500"), True),
    ("amount", "le", "10", tx(0, amount="10"), True),
    ("amount", "lt", 10, tx(0, amount="10"), False),
    ("ip", "eq", "1.2.3.4", tx(0), False),  # null fails every op...
    ("ip", "ne", "1.2.3.4", tx(0), False),
    ("ip", "not_in", ["x"], tx(0), False),
    ("ip", "exists", False, tx(0), True),  # ...except exists: false
    ("ip", "exists", True, tx(0, ip="1"), True),
    ("ip", "in", ["1", "2"], tx(0, ip="2"), True),
    ("ip", "not_in", ["1", "2"], tx(0, ip="3"), True),
    ("ip", "gt", 5, tx(0, ip="abc"), False),  # incomparable types: false, not an error
    ("attributes.channel", "eq", "web", tx(0, attributes={"channel": "web"}), True),
])
def test_conditions(field: str, op: str, value: Any, event: Transaction, holds: bool) -> None:
    assert Condition(field=field, op=op, value=value).holds(event) is holds


def test_where_filters_both_judging_and_counting() -> None:
    r = rule("""
        id: big
        kind: velocity
        window: 1m
        threshold: 1
        where: [{field: amount, op: ge, value: 100}]
        """)
    assert r.applies_to(tx(0, amount=100)) and not r.applies_to(tx(0, amount=Decimal("99.99")))


def test_geo_velocity_with_flights_flags_only_what_no_flight_makes() -> None:
    munich, new_york, berlin = (48.14, 11.58), (40.71, -74.01), (52.52, 13.40)
    ground_only = rule("{id: g, kind: geo_velocity, window: 12h, threshold: 300, min_distance_km: 100}")
    flights = rule("{id: f, kind: geo_velocity, window: 12h, threshold: 300, min_distance_km: 100, "
                   "flight_speed_kmh: 1000, airport_hours: 0.5}")
    home = tx(0, ts_s=0, lat=munich[0], lon=munich[1])
    distance = haversine_km(*munich, *new_york)
    for hours, possible in ((7.0, True), (0.5 + distance / 1000 + 0.01, True), (0.5 + distance / 1000 - 0.01, False),
                            (1.0, False)):
        hotel = tx(1, ts_s=hours * 3600, lat=new_york[0], lon=new_york[1])
        assert ground_only.judge(hotel, [home, hotel]) is not None  # over 300 km/h every time
        finding = flights.judge(hotel, [home, hotel])
        assert (finding is None) is possible, hours
    # a 500 km hop: the flight needs 0.5 h + 0.5 h, the ground 1.7 h at 300 km/h
    hop = haversine_km(*munich, *berlin)
    fast = tx(2, ts_s=0.75 * 3600, lat=berlin[0], lon=berlin[1])
    finding = flights.judge(fast, [home, fast])
    assert finding is not None and finding.value == pytest.approx(hop / 0.75, rel=1e-6)
    assert finding.threshold == pytest.approx(hop / (0.5 + hop / 1000), rel=1e-3)  # the fastest possible
    slow = tx(3, ts_s=1.5 * 3600, lat=berlin[0], lon=berlin[1])  # a flight makes it, the ground does not
    assert flights.judge(slow, [home, slow]) is None and ground_only.judge(slow, [home, slow]) is not None


def test_geo_velocity_flight_parameters_are_validated() -> None:
    from chalicelib.rules import RulesError

    for bad in ("flight_speed_kmh: 0", "flight_speed_kmh: .inf", "airport_hours: -1", "airport_hours: 49"):
        with pytest.raises(RulesError):
            rule(f"{{id: g, kind: geo_velocity, window: 6h, threshold: 300, {bad}}}")


def test_new_key_fan_out_needs_a_new_key_and_counts_distinct_values_in_the_burst() -> None:
    r = rule("{id: n, kind: new_key_fan_out, key: merchant_id, window: 1d, burst: 1h, threshold: 2}")
    burst = [tx(i, ts_s=7200 + 600 * i, merchant_id="p", account_id=a) for i, a in enumerate(["a", "b", "a"])]
    assert r.judge(burst[2], burst) is None  # {a, b}
    third = tx(3, ts_s=7200 + 1800, merchant_id="p", account_id="c")
    finding = r.judge(third, [*burst, third])
    assert finding is not None and finding.value == 3 and finding.threshold == 2
    assert finding.evidence["history_count"] == 0 and finding.evidence["distinct_values"] == ["a", "b", "c"]
    old = tx(9, ts_s=7200 + 1800 - 3600, merchant_id="p", account_id="z")  # exactly one burst before: history
    assert r.judge(third, [old, *burst, third]) is None
    tolerant = rule("{id: n, kind: new_key_fan_out, key: merchant_id, window: 1d, burst: 1h, threshold: 2, "
                    "max_history: 1}")
    finding = tolerant.judge(third, [old, *burst, third])
    assert finding is not None and finding.value == 3 and finding.evidence["history_count"] == 1
    by_ip = rule("{id: n, kind: new_key_fan_out, key: merchant_id, distinct: ip, window: 1d, burst: 1h, "
                 "threshold: 2}")
    nulls = [tx(i, ts_s=7200 + i, merchant_id="p", ip=None if i > 1 else f"ip-{i}") for i in range(5)]
    assert by_ip.judge(nulls[-1], nulls) is None  # null values are not counted


def test_new_key_fan_out_burst_must_be_shorter_than_window() -> None:
    from chalicelib.rules import RulesError

    with pytest.raises(RulesError, match="burst"):
        rule("{id: n, kind: new_key_fan_out, key: merchant_id, window: 1h, burst: 1h, threshold: 2}")
