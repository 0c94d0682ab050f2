"""`geo_velocity`: impossible travel - the implied speed since the key's previous located event.

The previous event is the latest (by ts, then arrival) earlier event of the key in the window that
has coordinates. Speed is great-circle distance over elapsed time, with elapsed time floored at
one second so simultaneous events far apart read as very fast rather than divide by zero. Moves of
at most `min_distance_km` (GPS jitter, geo-IP noise) are ignored.

Speed model: a move is impossible when it is faster than `threshold` (the top speed over ground,
km/h) *and*, when `flight_speed_kmh` is set, sooner than a flight could make it: elapsed hours
below `airport_hours + distance / flight_speed_kmh` (check-in, boarding, taxiing and leaving the
arrival airport, plus the flight itself). Without `flight_speed_kmh` only the speed counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from chalicelib.events import ROW_EVENT_ID, ROW_TS, Transaction, WindowRow, from_epoch_ms
from chalicelib.rules import limits
from chalicelib.rules.base import Finding, Rule, WindowAggregate, WindowedConfig
from chalicelib.rules.describe import Aggregate, others, register_aggregate
from chalicelib.rules.registry import register_rule_kind

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


class GeoVelocityConfig(WindowedConfig):
    kind: Literal["geo_velocity"] = "geo_velocity"
    threshold: float = Field(gt=0, le=limits.MAX_SPEED_KMH, allow_inf_nan=False, description="km/h")
    min_distance_km: float = Field(default=0.0, ge=0, le=limits.MAX_DISTANCE_KM, allow_inf_nan=False)
    flight_speed_kmh: float | None = Field(default=None, gt=0, le=limits.MAX_SPEED_KMH, allow_inf_nan=False,
                                           description="km/h; unset: no flights, only `threshold` counts")
    airport_hours: float = Field(default=1.0, ge=0, le=48, allow_inf_nan=False,
                                 description="fixed time a flight adds, in hours")


def impossible(distance_km: float, hours: float, config: GeoVelocityConfig) -> bool:
    """The speed model: faster than `threshold` and, with flights, sooner than a flight arrives."""
    if distance_km <= config.min_distance_km or distance_km / hours <= config.threshold:
        return False
    flight = config.flight_speed_kmh
    return flight is None or hours < config.airport_hours + distance_km / flight


def allowed_speed(distance_km: float, config: GeoVelocityConfig) -> float:
    """The fastest possible speed over `distance_km` under the speed model (the hit's threshold)."""
    flight = config.flight_speed_kmh
    if flight is None:
        return config.threshold
    return round(max(config.threshold, distance_km / (config.airport_hours + distance_km / flight)), 3)


@register_rule_kind
class GeoVelocityRule(Rule[GeoVelocityConfig]):
    config_model = GeoVelocityConfig
    default_edge_to = "ip"

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        if event.lat is None or event.lon is None:
            return None
        previous = next(
            (x for x in reversed(window)
             if x.event_id != event.event_id and x.lat is not None and x.lon is not None),
            None,
        )
        if previous is None:
            return None
        assert previous.lat is not None and previous.lon is not None
        distance = haversine_km(previous.lat, previous.lon, event.lat, event.lon)
        hours = max((event.ts - previous.ts).total_seconds(), 1.0) / 3600
        if not impossible(distance, hours, self.config):
            return None
        return Finding(round(distance / hours, 3), allowed_speed(distance, self.config), {
            "previous_event_id": previous.event_id,
            "previous_ts": previous.ts.isoformat(),
            "distance_km": round(distance, 3),
            "elapsed_s": (event.ts - previous.ts).total_seconds(),
        })

    def judge_rows(self, event: Transaction, window: Sequence[WindowRow],
                   positions: Mapping[str, int]) -> Finding | None:
        if event.lat is None or event.lon is None:
            return None
        lat, lon, event_id = positions["lat"], positions["lon"], event.event_id
        previous = next((row for row in reversed(window)
                         if row[ROW_EVENT_ID] != event_id and row[lat] is not None and row[lon] is not None), None)
        if previous is None:
            return None
        distance = haversine_km(previous[lat], previous[lon], event.lat, event.lon)
        previous_ts = from_epoch_ms(previous[ROW_TS])
        hours = max((event.ts - previous_ts).total_seconds(), 1.0) / 3600
        if not impossible(distance, hours, self.config):
            return None
        return Finding(round(distance / hours, 3), allowed_speed(distance, self.config), {
            "previous_event_id": previous[ROW_EVENT_ID],
            "previous_ts": previous_ts.isoformat(),
            "distance_km": round(distance, 3),
            "elapsed_s": (event.ts - previous_ts).total_seconds(),
        })

    def fields_read(self) -> frozenset[str]:
        return frozenset({"lat", "lon"})

    def window_aggregate(self, positions: Mapping[str, int]) -> WindowAggregate:
        return _LastLocated(positions["lat"], positions["lon"], self.config)


class _LastLocated(WindowAggregate):
    """The last two located rows added: for the newest, the one before is its previous location."""

    __slots__ = ("config", "last", "lat", "lon", "previous")

    def __init__(self, lat: int, lon: int, config: GeoVelocityConfig) -> None:
        self.lat, self.lon = lat, lon
        self.config = config
        self.last: tuple[Any, ...] | None = None
        self.previous: tuple[Any, ...] | None = None

    def add(self, row: tuple[Any, ...]) -> None:
        if row[self.lat] is not None and row[self.lon] is not None:
            self.previous, self.last = self.last, row

    def remove(self, row: tuple[Any, ...]) -> None:
        pass  # rows leave oldest first; `may_fire` checks the previous row is still in the window

    def may_fire(self, row: tuple[Any, ...], window_start_ms: int) -> bool:
        previous = self.previous
        if self.last is not row or previous is None or previous[0] <= window_start_ms:
            return False
        distance = haversine_km(previous[self.lat], previous[self.lon], row[self.lat], row[self.lon])
        hours = max((row[0] - previous[0]) / 1000, 1.0) / 3600
        return impossible(distance, hours, self.config)


@register_aggregate("geo_velocity")
def describe_geo_velocity(rule: Rule[Any], event: Transaction, window: Sequence[Transaction]) -> Aggregate:
    located = [x for x in others(event, window) if x.lat is not None and x.lon is not None]
    if event.lat is None or event.lon is None or not located:
        return Aggregate(None, rule.config.threshold, "no located event before it in the window")
    previous = located[-1]
    assert previous.lat is not None and previous.lon is not None
    distance = haversine_km(previous.lat, previous.lon, event.lat, event.lon)
    hours = max((event.ts - previous.ts).total_seconds(), 1.0) / 3600
    note = f"km/h since {previous.event_id}, {distance:.3f} km (min_distance_km {rule.config.min_distance_km})"
    if rule.config.flight_speed_kmh is not None:
        note += (f"; a flight makes it in {rule.config.airport_hours:g} h + {distance:.0f} km at "
                 f"{rule.config.flight_speed_kmh:g} km/h")
    return Aggregate(round(distance / hours, 3), allowed_speed(distance, rule.config), note)
