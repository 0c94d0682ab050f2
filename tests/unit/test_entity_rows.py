"""What a batch writes to the graph (`entities.entity_rows`) against a brute-force model: each
vertex first seen at the earliest event naming it, each relationship's first and last sighting,
and each event's relationships, whatever the order of the events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.entities import RELATIONSHIPS, VERTEX_LABELS, entity_rows, iso_ms
from chalicelib.events import Transaction

START = datetime(2026, 11, 1, tzinfo=UTC)


@st.composite
def transactions(draw: st.DrawFn, *, n: int = 12) -> list[Transaction]:
    """Events over small pools, out of time order, so accounts share identifiers and a later
    event can be an earlier sighting."""
    events = []
    for i in range(draw(st.integers(0, n))):
        fields = {name: draw(st.none() | st.sampled_from([f"{name}-1", f"{name}-2"])) for name in RELATIONSHIPS}
        events.append(Transaction(event_id=f"e{i}", ts=START + timedelta(seconds=draw(st.integers(0, 50))),
                                  account_id=draw(st.sampled_from(["a1", "a2", "a3"])), amount=1, **fields))
    return events


@given(transactions())
def test_entity_rows_match_a_brute_force_model(events: list[Transaction]) -> None:
    vertices, spans, uses = entity_rows(events)

    named: dict[tuple[str, str], list[str]] = {}
    seen: dict[tuple[str, str, str, str], list[str]] = {}
    used: dict[str, tuple[tuple[str, str, str, str], ...]] = {}
    for event in events:
        at = iso_ms(event.ts)
        named.setdefault(("Account", event.account_id), []).append(at)
        mine = []
        for name, label in RELATIONSHIPS.items():
            value = getattr(event, name)
            if value is not None:
                named.setdefault((VERTEX_LABELS[name], value), []).append(at)
                key = (event.account_id, label, VERTEX_LABELS[name], value)
                seen.setdefault(key, []).append(at)
                mine.append(key)
        used[event.event_id] = tuple(mine)

    assert vertices == {vertex: min(times) for vertex, times in named.items()}
    assert spans == {key: (min(times), max(times)) for key, times in seen.items()}
    assert uses == used
