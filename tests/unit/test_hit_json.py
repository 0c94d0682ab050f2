"""A hit's JSON text is made once and shared: the sink line (`Hit.json_line`) must be exactly
`json.dumps(hit.to_dict(), default=str, separators=(",", ":"))`, byte for byte, and the graph's
evidence text (`Hit.evidence_json`) exactly that of the evidence alone, whatever the evidence holds."""

from __future__ import annotations

import json
import math
from dataclasses import fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.hits import HIT_FIELDS, EdgeEnd, Hit, HitEdge


def reference(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(), st.decimals(allow_nan=False), st.just(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)))
evidence_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                               | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
class Text(str):
    pass


class Whole(int):
    pass


#: mostly what a hit holds (str, int, float); now and then what it is not declared to hold, which
#: the line must still write as the encoder does
texts = st.one_of(st.text(max_size=12), st.text(max_size=12).map(Text), st.none(), st.integers(), st.decimals())
numbers = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
                    st.integers().map(Whole), st.decimals(allow_nan=False), st.text(max_size=4))


@st.composite
def hits(draw: st.DrawFn) -> Hit:
    text = st.text(max_size=12) if draw(st.integers(0, 3)) else texts
    edge = HitEdge(draw(text), EdgeEnd(draw(text), draw(text)), EdgeEnd(draw(text), draw(text)))
    values: list[Any] = [draw(text) for _ in range(10)] + [draw(numbers), draw(numbers), draw(text), edge,
                                                          draw(st.dictionaries(st.text(max_size=10), evidence_values,
                                                                               max_size=6))]
    return Hit(*values)


@settings(max_examples=600)
@given(hits())
def test_the_line_and_the_evidence_text_are_json_dumps_byte_for_byte(hit: Hit) -> None:
    assert hit.json_line() == reference(hit.to_dict())
    assert hit.evidence_json() == reference(hit.evidence)
    assert hit.json_line() == reference(hit.to_dict())  # again, from the kept evidence text


def test_fields_and_their_order_are_the_dataclass_s() -> None:
    assert tuple(f.name for f in fields(Hit) if f.init) == HIT_FIELDS
    assert HIT_FIELDS[-1] == "evidence"


def test_the_kept_text_is_no_part_of_equality_and_is_not_carried_by_replace() -> None:
    edge = HitEdge("L", EdgeEnd("account_id", "a"), EdgeEnd("ip", "1.2.3.4"))
    hit = Hit("h", "r", "velocity", "enforce", "high", "e", "2026-01-01T00:00:00.000Z", "a", "account_id", "a",
              Decimal("1.5"), math.nan, "v1", edge, {"n": 1, "ids": ["x", "é"]})
    fresh = replace(hit)
    hit.evidence_json()
    assert hit == fresh
    other = replace(hit, evidence={"n": 2})
    assert other.evidence_json() == '{"n":2}'
    assert "_evidence_text" not in repr(hit) and "_evidence_text" not in hit.to_dict()
