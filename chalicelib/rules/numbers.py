"""Exact numeric helpers shared by the aggregating kinds (money stays Decimal)."""

from __future__ import annotations

from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow
from typing import Any

from chalicelib.rules.base import WindowAggregate


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


#: Arithmetic that refuses to round: an aggregate that would need rounding raises `Inexact` and
#: falls back to letting `judge` decide.
EXACT = Context(prec=80, traps=[Inexact, InvalidOperation, Overflow, DivisionByZero])
_WIDE = Context(prec=200)  # running sums: exact for every value `RunningSum` calls plain
_PLAIN_EXPONENT = -12  # at most 12 decimal places ...
_PLAIN_LIMIT = Decimal("1e12")  # ... and at most 1e12 in size (the amount limit)


class RunningSum:
    """Count, sum, sum of absolute values and sum of squares of the numbers in a window, kept as
    numbers enter and leave it. `exact_below(bound)` says whether any in-order summation of these
    numbers at the precision a kind's `judge` uses is exact, so the aggregate and `judge` agree."""

    __slots__ = ("absolute", "count", "odd", "squares", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = Decimal(0)
        self.absolute = Decimal(0)
        self.squares = Decimal(0)
        self.odd = 0  # numbers that are not plain (too many decimals or too large)

    def add(self, value: Decimal) -> None:
        self._change(value, 1)

    def remove(self, value: Decimal) -> None:
        self._change(value, -1)

    def _change(self, value: Decimal, sign: int) -> None:
        self.count += sign
        wide = _WIDE
        exponent = value.as_tuple().exponent
        if not isinstance(exponent, int) or exponent < _PLAIN_EXPONENT or abs(value) > _PLAIN_LIMIT:
            self.odd += sign  # kept out of the sums, which are not used while odd numbers are in
            return
        if sign > 0:
            self.total = wide.add(self.total, value)
            self.absolute = wide.add(self.absolute, abs(value))
            self.squares = wide.add(self.squares, wide.multiply(value, value))
        else:
            self.total = wide.subtract(self.total, value)
            self.absolute = wide.subtract(self.absolute, abs(value))
            self.squares = wide.subtract(self.squares, wide.multiply(value, value))

    def exact_below(self, bound: Decimal) -> bool:
        return self.odd == 0 and self.absolute < bound


class SummedField(WindowAggregate):
    """A running aggregate keeping a `RunningSum` of one field's numeric values (non-numbers are
    skipped); a kind subclasses it and says in `may_fire` what the sums allow."""

    __slots__ = ("position", "sums")

    def __init__(self, position: int) -> None:
        self.position = position
        self.sums = RunningSum()

    def add(self, row: tuple[Any, ...]) -> None:
        value = as_decimal(row[self.position])
        if value is not None:
            self.sums.add(value)

    def remove(self, row: tuple[Any, ...]) -> None:
        value = as_decimal(row[self.position])
        if value is not None:
            self.sums.remove(value)
