"""One reference implementation: the rule-author toolkit's brute-force reference is the oracle the
project's own property tests use, and it compares `where` values as the engine does (DESIGN.md,
rule semantics): numbers exactly (`500` matches an amount of `500.00`), two texts as text in
code-point order (`"500" > "60"` is false), text against a number never matches."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from chalicelib.events import Transaction
from chalicelib.rules import load_rules_text
from chalicelib.rules.base import Condition
from fraudtools.testing.reference import condition_holds
from tests.fakes import MemoryHitSink, memory_pipeline, raw_records
from tests.property.test_engine_vs_oracle import oracle_hits

CASES: list[tuple[Any, str, Any, bool]] = [
    ("500", "gt", "60", False),  # text vs text: as text, even when both look like numbers
    ("60", "gt", "500", True),
    ("b", "ge", "a", True),
    ("abc", "lt", "abd", True),
    ("500", "eq", 500, False),  # text never equals a number
    (Decimal("500.00"), "eq", 500, True),
    (Decimal("500.00"), "eq", "500", True),  # numeric text in a rule against an amount: a number
    (Decimal("12.5"), "gt", "9", True),
    (7, "lt", "10", False),  # an integer attribute against text: incomparable, fails
]


def event(code: Any, amount: str = "10") -> Transaction:
    return Transaction.model_validate({"event_id": f"e-{code}-{amount}", "account_id": "a", "amount": amount,
                                       "ts": "2026-11-01T10:00:00Z", "attributes": {"code": code}})


@pytest.mark.parametrize(("actual", "op", "wanted", "holds"), CASES)
def test_the_reference_and_the_engine_compare_where_values_alike(actual: Any, op: str, wanted: Any,
                                                                 holds: bool) -> None:
    field = "amount" if isinstance(actual, Decimal) else "attributes.code"
    condition = Condition(field=field, op=op, value=wanted)  # type: ignore[arg-type]
    subject = event("x", str(actual)) if isinstance(actual, Decimal) else event(actual)
    assert subject.get(field) == actual
    assert condition.holds(subject) is holds
    assert condition_holds(condition, subject) is holds


def test_the_project_oracle_agrees_with_the_engine_on_text_comparisons() -> None:
    rules = load_rules_text("version: 1\nrules:\n  - {id: big-codes, kind: velocity, key: account_id, "
                            "window: 1h, threshold: 0, where: [{field: attributes.code, op: gt, value: '60'}]}\n")
    stream = [event("500"), event("7"), event("61"), event("abc")]
    sink = MemoryHitSink()
    pipeline = memory_pipeline(rules, sink)
    try:
        pipeline.process(raw_records(stream))
    finally:
        pipeline.close()
    fired = {(h.rule_id, h.event_id) for h in sink.hits.values()}
    assert fired == {("big-codes", "e-7-10"), ("big-codes", "e-61-10"), ("big-codes", "e-abc-10")}
    assert set(oracle_hits(rules, stream)) == fired
