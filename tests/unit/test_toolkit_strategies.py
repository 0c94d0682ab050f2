"""The toolkit's stream knobs do what they say."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

from hypothesis import Phase, find, given, settings

from chalicelib.events import Transaction
from chalicelib.rules import load_rules_text
from fraudtools.testing import pools_for, streams

READING = load_rules_text("""
version: 1
rules:
  - id: web-cards
    kind: fan_out
    key: attributes.merchant_group
    distinct: card_id
    window: 5m
    threshold: 1
    where: [{field: attributes.channel, op: eq, value: web}, {field: amount, op: ge, value: 250}]
""")


def test_duplicates_repeat_ids_and_none_means_none() -> None:
    repeated = find(streams(duplicates=0.5, min_size=5), lambda s: len({e.event_id for e in s}) < len(s))
    assert len({e.event_id for e in repeated}) < len(repeated)


@given(streams(duplicates=0.0, out_of_order=0.0, jitter_ms=(0,)))
def test_without_late_events_or_duplicates_time_only_moves_forward(stream: list[Transaction]) -> None:
    assert len({e.event_id for e in stream}) == len(stream)
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(stream))


def test_late_events_arrive_after_later_timestamps() -> None:
    late = find(streams(out_of_order=0.5, duplicates=0.0),
                lambda s: any(b.ts < a.ts for a, b in itertools.pairwise(s)))
    assert any(b.ts < a.ts for a, b in itertools.pairwise(late))


@given(streams(bursts=1.0, duplicates=0.0, burst_size=(4, 4), min_size=4, max_size=4,
               burst_spacing=timedelta(seconds=1), burst_amounts=[Decimal("1.50")]))
def test_a_burst_is_one_account_card_and_ip_a_second_apart(stream: list[Transaction]) -> None:
    assert len({(e.account_id, e.card_id, e.ip, e.device_id) for e in stream}) == 1
    assert [(b.ts - a.ts) for a, b in itertools.pairwise(stream)] == [timedelta(seconds=1)] * 3
    assert {e.amount for e in stream} == {Decimal("1.50")}


def test_reading_a_ruleset_fills_the_fields_its_rules_read() -> None:
    pools, amounts = pools_for(READING)
    assert "web" in pools["attributes.channel"] and None in pools["attributes.channel"]
    assert len([v for v in pools["attributes.channel"] if v is not None]) >= 2
    assert {Decimal("250"), Decimal("249.99"), Decimal("250.01")} <= set(amounts)
    assert pools["attributes.merchant_group"] == ("merchant_group-1", "merchant_group-2", None)
    # any stream that meets the condition will do: shrinking one (find's default) took minutes on some draws
    hit_the_condition = find(streams(reading=READING),
                             lambda s: any(e.attributes.get("channel") == "web" and e.amount >= 250 for e in s),
                             settings=settings(phases=[Phase.generate], database=None))
    assert hit_the_condition
