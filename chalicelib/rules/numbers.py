"""Exact numeric helpers shared by the aggregating kinds (money stays Decimal)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def as_decimal(value: Any) -> Decimal | None:
    """A field value as an exact Decimal, or None when it is absent or not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    return None


def plain(value: Decimal) -> int | float:
    """A Decimal for JSON output: an int when integral, else a float."""
    return int(value) if value == value.to_integral_value() else float(value)
