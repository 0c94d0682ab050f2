"""Query parameters of the investigator's API: one pydantic model per route, validated before any
store is read. A bad value is a 400 with a message that names the parameter and says what fits."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chalicelib.entities import DEFAULT_VIA, LINKABLE, iso_ms
from chalicelib.linkage import DEFAULT_MIN_LINK_USES

#: an account id, rule id or other key as a query value: bounded, printable
Key = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]
GRAPH_FIELDS = LINKABLE


class ParameterError(ValueError):
    """A query parameter that does not fit; the message is for the caller."""


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeRange(_Query):
    since: datetime | None = None
    until: datetime | None = None

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # a time without offset is UTC, like the events
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+14:00 is before year 1 in UTC
            raise ValueError("give a time between years 1 and 9999 in UTC") from None

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be before until")
        return self

    @property
    def since_iso(self) -> str | None:
        return None if self.since is None else iso_ms(self.since.astimezone(UTC))

    @property
    def until_iso(self) -> str | None:
        return None if self.until is None else iso_ms(self.until.astimezone(UTC))


class HitsQuery(TimeRange):
    rule: RuleId | None = None
    account: Key | None = None
    mode: Literal["enforce", "shadow"] | None = None
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=500)


class AccountHitsQuery(TimeRange):
    rule: RuleId | None = None
    mode: Literal["enforce", "shadow"] | None = None
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=500)


class RatesQuery(TimeRange):
    rule: RuleId | None = None
    mode: Literal["enforce", "shadow"] | None = None
    bucket_seconds: int = Field(default=3600, ge=1, le=31 * 86400)
    limit: int = Field(default=200, ge=1, le=2000, description="buckets per page, newest first")
    cursor: str | None = Field(default=None, max_length=500)


class TopAccountsQuery(TimeRange):
    rule: RuleId | None = None
    mode: Literal["enforce", "shadow"] | None = None
    limit: int = Field(default=10, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500)


class ActivityQuery(TimeRange):
    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=500)


class NeighbourhoodQuery(_Query):
    hops: int = Field(default=2, ge=1, le=3)
    max_nodes: int = Field(default=200, ge=2, le=500)
    max_accounts_per_identifier: int = Field(default=50, ge=2, le=500)


class RingsQuery(_Query):
    via: tuple[Literal[GRAPH_FIELDS], ...] = DEFAULT_VIA  # type: ignore[valid-type]
    min_size: int = Field(default=3, ge=2, le=1000)
    max_accounts_per_identifier: int = Field(default=50, ge=2, le=500)
    #: one share for every field; None: the per-field defaults (linkage.DEFAULT_LINK_SHARES)
    min_link_share: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    min_link_uses: int = Field(default=DEFAULT_MIN_LINK_USES, ge=1, le=1_000_000)
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500)

    @field_validator("via", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("via")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"name at least one of {', '.join(GRAPH_FIELDS)}")
        return value


Q = TypeVar("Q", bound=_Query)


def parse(model: type[Q], params: Mapping[str, str] | None) -> Q:
    """Validate query parameters; ParameterError with every problem, one per line."""
    try:
        return model.model_validate(dict(params or {}))
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "query"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                allowed = ", ".join(sorted(model.model_fields))
                message = f"is not a parameter of this route (use: {allowed})"
            problems.append(f"{where}: {message}")
        raise ParameterError("; ".join(problems)) from None


def encode_cursor(position: Any) -> str:
    """An opaque cursor for the next page (base64url JSON; not a secret, just not to be built by hand)."""
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


#: the largest whole-number cursor: an offset, an event's seq or a bucket start in ms (year 9999)
MAX_CURSOR_INT = 253_402_300_799_999


def decode_cursor(cursor: str, kind: type, length: int | None = None) -> Any:
    """The position a cursor holds, checked to be of the route's kind (`list` of `length`, or `int`
    from 0 to MAX_CURSOR_INT: a crafted cursor is a 400, never a number a store or clock overflows on)."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ParameterError("cursor: not a cursor this API issued; pass next_cursor from the previous page") from None
    valid = isinstance(value, kind) and not isinstance(value, bool)
    if valid and kind is list:
        valid = len(value) == length and all(isinstance(v, str) for v in value)
    if valid and kind is int:
        valid = 0 <= value <= MAX_CURSOR_INT
    if not valid:
        raise ParameterError("cursor: not a cursor of this route; pass next_cursor from the previous page")
    return value


class NoQuery(_Query):
    """A route without query parameters: any given is a 400."""
