"""What every rule kind shares: its config base, `where` filters, durations, and the rule contract.

A rule kind is two classes: a pydantic config (`VelocityConfig`, discriminated by `kind`) and a
behaviour (`VelocityRule`) whose `judge` is pure: it receives the event and the events of its
window and returns a `Finding` or None. Choosing the window (key, time bounds, arrival order,
`where` filter) is the engine's job, so every kind gets the normative semantics for free.

Size: this is the whole contract a kind author reads (configs, `where`, durations, `Rule`,
`GraphRule`, `WindowAggregate`), kept in one module on purpose.
"""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import IntEnum
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, field_validator, model_validator
from pydantic_core import core_schema

from chalicelib.entities import VERTEX_LABELS, GraphView, ReachQuery, entity_field_or_account, iso_ms
from chalicelib.events import (
    KEY_FIELDS,
    ROW_EVENT_ID,
    ROW_TS,
    Transaction,
    WindowRow,
    attribute_name,
    is_key_field,
    transaction_of_row,
)
from chalicelib.rules import limits
from chalicelib.rules.examples import MAX_EXAMPLES_PER_RULE, Examples

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

#: Fields a rule may name: the Transaction's own fields or `attributes.NAME`.
EVENT_FIELDS = frozenset(Transaction.model_fields) - {"attributes"}


class Duration(timedelta):
    """A window length written as `<number><s|m|h|d>` in YAML (`10m`, `24h`); always positive and
    at most `limits.MAX_DURATION` (400 days)."""

    @classmethod
    def parse(cls, value: Any) -> Duration:
        longest = int(limits.MAX_DURATION.total_seconds())
        if isinstance(value, timedelta):
            seconds: float = value.total_seconds()
        else:
            match = _DURATION.match(value) if isinstance(value, str) and len(value) <= 64 else None
            if match is None:
                raise ValueError(
                    f"invalid duration {value!r}: use a whole number followed by s, m, h or d (e.g. 10m)"
                )
            digits = match.group(1).lstrip("0") or "0"
            # Compare before building a timedelta: a huge number would overflow it.
            too_long = len(digits) > len(str(longest))
            seconds = longest + 1 if too_long else int(digits) * _UNIT_SECONDS[match.group(2)]
        if seconds <= 0:
            raise ValueError(f"duration {value!r} must be longer than zero")
        if seconds > longest:
            raise ValueError(f"duration {value!r} is longer than the maximum of {cls(seconds=longest)}")
        return cls(seconds=seconds)

    def __str__(self) -> str:
        seconds = int(self.total_seconds())
        for unit in ("d", "h", "m"):
            if seconds % _UNIT_SECONDS[unit] == 0:
                return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
        return f"{seconds}s"

    @property
    def ms(self) -> int:
        return int(self.total_seconds() * 1000)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_plain_validator_function(
            cls.parse, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )


def check_field_name(name: str) -> str:
    if name in EVENT_FIELDS or attribute_name(name):
        return name
    known = ", ".join(sorted(EVENT_FIELDS))
    raise ValueError(
        f"unknown event field {name!r}: use one of {known}, or attributes.NAME (letters, digits, _)"
    )


def check_key_name(name: str) -> str:
    """A windowed rule's `key`: a field every time-series store can read history by."""
    check_field_name(name)
    if is_key_field(name):
        return name
    raise ValueError(
        f"cannot group a window by {name!r}: use one of {', '.join(KEY_FIELDS)}, or attributes.NAME"
    )


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Op = Literal["eq", "ne", "gt", "ge", "lt", "le", "in", "not_in", "exists"]


class Condition(_Frozen):
    """One `where` condition. A null field fails every op except `exists: false`."""

    field: str
    op: Op
    value: Any = None

    @model_validator(mode="after")
    def _check(self) -> Condition:
        check_field_name(self.field)
        if self.op in ("in", "not_in"):
            if not isinstance(self.value, list | tuple):
                raise ValueError(f"op {self.op!r} needs a list value")
            if len(self.value) > limits.MAX_IN_VALUES:
                raise ValueError(f"op {self.op!r} takes at most {limits.MAX_IN_VALUES} values, got "
                                 f"{len(self.value)}: use a list_match rule with a list under 'lists:'")
            for item in self.value:
                _check_scalar(item, f"op {self.op!r}")
        elif self.op == "exists":
            if not isinstance(self.value, bool):
                raise ValueError("op 'exists' needs value true or false")
        else:
            if self.value is None or isinstance(self.value, list | tuple | dict):
                raise ValueError(f"op {self.op!r} needs a single value")
            _check_scalar(self.value, f"op {self.op!r}")
        return self

    def holds(self, event: Transaction) -> bool:
        return self.holds_value(event.get(self.field))

    def holds_value(self, actual: Any) -> bool:
        """The condition on the value of its field (what `event.get(field)` returns)."""
        if self.op == "exists":
            return (actual is not None) is self.value
        if actual is None:
            return False
        if self.op in ("in", "not_in"):
            inside = any(_equal(actual, v) for v in self.value)
            return inside if self.op == "in" else not inside
        if self.op == "eq":
            return _equal(actual, self.value)
        if self.op == "ne":
            return not _equal(actual, self.value)
        try:
            left, right = _comparable(actual, self.value)
            return bool(_ORDER[self.op](left, right))
        except (TypeError, ArithmeticError):
            return False


def _check_scalar(value: Any, what: str) -> None:
    """`where` values are flat scalars a comparison with an event field cannot choke on."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > limits.MAX_ABS_INT:
            raise ValueError(f"{what}: integer {value:.3e} is beyond +/-{limits.MAX_ABS_INT:.0e}")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{what}: {value} is not a finite number")
    elif isinstance(value, str):
        if len(value) > limits.MAX_VALUE_CHARS:
            raise ValueError(f"{what}: a text value has at most {limits.MAX_VALUE_CHARS} characters")
    elif value is None:
        raise ValueError(f"{what}: null never matches (a null field fails every op but exists: false)")
    elif isinstance(value, list | tuple | dict):
        raise ValueError(f"{what}: values must be plain text, numbers or booleans, not nested lists or maps")
    else:
        raise ValueError(f"{what}: values must be plain text, numbers or booleans, not {type(value).__name__}")


_ORDER = {
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def _comparable(actual: Any, wanted: Any) -> tuple[Any, Any]:
    if isinstance(actual, Decimal) and isinstance(wanted, int | float | str) and not isinstance(wanted, bool):
        return actual, Decimal(str(wanted))
    return actual, wanted


def _equal(actual: Any, wanted: Any) -> bool:
    try:
        left, right = _comparable(actual, wanted)
    except ArithmeticError:
        return False
    return bool(left == right)


class EdgeSpec(_Frozen):
    """How a hit appears in the graph: `from` entity -[label]-> `to` entity (event field names)."""

    label: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*$", max_length=64)
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _check(self) -> EdgeSpec:
        for name in (self.from_, self.to):
            if name is not None and name not in VERTEX_LABELS:
                raise ValueError(f"edge end {name!r} is not an entity field: use one of {', '.join(VERTEX_LABELS)}")
        return self


Severity = Literal["low", "medium", "high", "critical"]
Mode = Literal["enforce", "shadow"]


class RuleConfig(_Frozen):
    """Fields every rule has. Subclasses add `kind: Literal[...]` and their own parameters."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    description: str | None = Field(default=None, max_length=2000)
    severity: Severity = "medium"
    mode: Mode = "enforce"
    enabled: bool = True
    where: tuple[Condition, ...] = Field(default=(), max_length=limits.MAX_CONDITIONS)
    edge: EdgeSpec = EdgeSpec()
    #: Checked by `rules test`, never run in production; excluded from dumps, so not in the version.
    examples: Examples = Field(default=(), max_length=MAX_EXAMPLES_PER_RULE, exclude=True)


class WindowedConfig(RuleConfig):
    """A rule over the events of one key within a trailing time window."""

    key: str = "account_id"
    window: Duration

    _check_key = field_validator("key")(check_key_name)


class BurstConfig(WindowedConfig):
    """A window split at `event.ts - burst`: before it the key's habit or history, then the burst."""

    burst: Duration

    @model_validator(mode="after")
    def _burst_inside_window(self) -> BurstConfig:
        if self.burst >= self.window:
            raise ValueError(f"burst ({self.burst}) must be shorter than window ({self.window}): the window "
                             "before the burst is the key's habit or history")
        return self


# --------------------------------------------------------------------------- behaviour


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule reports when it fires: the aggregate, the threshold it beat, the evidence."""

    value: float | int | Decimal
    threshold: float | int | Decimal
    evidence: Mapping[str, Any] = field(default_factory=dict)
    #: (field, value) of the entity the hit edge should point to, when the rule found one
    #: (the shared e-mail of a ring, the flagged neighbour); rules.yaml `edge.to` still wins.
    edge_to: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What a rule may need beyond its config: named lists (for `list_match`)."""

    lists: Mapping[str, frozenset[str]] = field(default_factory=dict)


C = TypeVar("C", bound=RuleConfig)

#: Contributing event ids carried in a hit's evidence, at most.
EVIDENCE_IDS_CAP = 20


#: How evaluation counts a kind's hits: time-window (micro), graph (macro), or weighed
#: combinations of other rules' hits (composite). Declared by each kind, read through the registry.
View = Literal["micro", "macro", "composite"]


class Rule(ABC, Generic[C]):
    """Behaviour of one configured rule. Subclasses implement `judge`; it must not do I/O.

    A kind declares, as class variables: its `config_model` (whose `kind` field names it), the
    `view` its hits count as, and whether its hits `flags_account` for `near_flagged`."""

    config_model: ClassVar[type[RuleConfig]]
    view: ClassVar[View] = "micro"
    #: False for kinds whose hits are derived from other hits or links (an account near a
    #: flagged one is not itself flagged unless a `near_flagged` rule lists the rule by id).
    flags_account: ClassVar[bool] = True

    #: Default `edge.to` when the rule's key is the account itself (e.g. velocity -> merchant).
    default_edge_to: ClassVar[str | None] = None

    #: True for kinds that judge the *absence* of history ("nobody paid this payee in the window",
    #: `new_key_fan_out`): such a rule is judged on an event only once the time-series store's
    #: observation covers the whole window before it - `observed_since <= event.ts - window`, with
    #: `observed_since` the time of the first event the store accepted (`TimeSeriesStore.
    #: observed_since`) - and is silent before ("warming up"). The engine applies it before calling
    #: the kind (one comparison per event and rule), so `judge` stays pure. DESIGN.md, Rule semantics.
    needs_full_history: ClassVar[bool] = False

    def __init__(self, config: C, context: RuleContext) -> None:
        self.config = config
        self.context = context

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def kind(self) -> str:
        return str(type(self.config).model_fields["kind"].default)

    @property
    def key_field(self) -> str:
        """The field the rule groups by; events with a null key are not judged."""
        return str(getattr(self.config, "key", "account_id"))

    @property
    def window(self) -> Duration | None:
        """How far back the rule looks; None means it needs no history (only the event)."""
        return getattr(self.config, "window", None)

    def applies_to(self, event: Transaction) -> bool:
        where = self.config.where
        return not where or all(cond.holds(event) for cond in where)

    def fields_read(self) -> frozenset[str] | None:
        """The event fields `judge` reads besides `event_id` and `ts` (and the `where` fields);
        None (the default) means any field: the engine then keeps whole events in its windows."""
        return None

    def window_aggregate(self, positions: Mapping[str, int]) -> WindowAggregate | None:
        """A running aggregate the engine slides over this rule's window instead of handing every
        event its whole window; `positions` maps each of `fields_read()` to its place in a row.
        None (the default): every event is judged from its materialised window."""
        return None

    def compact_fields(self) -> frozenset[str] | None:
        """`fields_read()` where it was written for the `judge` this rule runs, else None (a
        subclass that overrides `judge` but inherits the hook may read other fields)."""
        return self.fields_read() if self._hook_speaks_for_judge("fields_read") else None

    def running_aggregate(self, positions: Mapping[str, int]) -> WindowAggregate | None:
        """`window_aggregate()` where it was written for the `judge` this rule runs, else None:
        an inherited aggregate would decide "cannot fire" for a `judge` it does not know."""
        return self.window_aggregate(positions) if self._hook_speaks_for_judge("window_aggregate") else None

    def _hook_speaks_for_judge(self, hook: str) -> bool:
        mro = type(self).__mro__
        hook_owner = next(k for k in mro if hook in vars(k))
        judge_owner = next(k for k in mro if "judge" in vars(k))
        return issubclass(hook_owner, judge_owner)

    @abstractmethod
    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        """Judge `event` given its window.

        `window` holds the events of the event's key that arrived no later than it, passed the
        rule's `where`, and have `event.ts - window < ts <= event.ts`, sorted by (ts, arrival);
        the event itself is in it. For rules without a window it is `(event,)`.
        """

    def judge_rows(self, event: Transaction, window: Sequence[WindowRow],
                   positions: Mapping[str, int]) -> Finding | None:
        """`judge` on compact rows: what the engine calls on the hot path. `window` is the same
        window as `judge` gets, as rows `(ts_ms, seq, event_id, *values)` (`events.WindowRow`;
        rows may carry more values after those of `positions`); `positions` maps each field of
        `fields_read()` (and of `where`) to its place in a row. A kind overrides it together with
        `judge` and `fields_read` and must find exactly what `judge` finds (value and evidence).

        The default rebuilds the window's events and calls `judge`: plugin kinds written against
        `judge` alone work unchanged, at the cost of one object per row."""
        return self.judge(event, [transaction_of_row(row, positions) for row in window])

    def rows_judge(self) -> Callable[[Transaction, Sequence[WindowRow], Mapping[str, int]], Finding | None]:
        """`judge_rows` where it was written for the `judge` this rule runs and the rule says
        which fields it reads (`compact_fields`: the rows then hold exactly those), else the
        default (rebuild events, call `judge`): a subclass that overrides `judge` keeps its meaning."""
        if self._hook_speaks_for_judge("judge_rows") and self.compact_fields() is not None:
            return self.judge_rows
        return functools.partial(Rule.judge_rows, self)

    def edge_ends(self) -> tuple[str, str]:
        """(from field, to field) of the hit edge: config first, then the kind's defaults. Both
        are entity fields: a default that is none (a key such as `currency`) is the account."""
        spec = self.config.edge
        src = spec.from_ or "account_id"
        dst = spec.to or (self.key_field if self.key_field != src else self.default_edge_to or src)
        return src, entity_field_or_account(dst)

    def edge_label(self) -> str:
        return self.config.edge.label or self.id.upper().replace("-", "_")


class WindowAggregate(ABC):
    """A rule's running aggregate over one key's window, kept by the engine across batches.

    The engine adds each row (a compact event: `(ts_ms, seq, event_id, *field values)`) that
    enters the window and removes each row that leaves it, oldest first, and asks `may_fire` for
    the newest row. `may_fire` must be True whenever `judge` would return a finding for that
    event (it may be True more often): the engine then calls `judge` on the exact window, so the
    aggregate decides only which events are worth it, never what a hit says.
    """

    __slots__ = ()

    @abstractmethod
    def add(self, row: tuple[Any, ...]) -> None: ...

    @abstractmethod
    def remove(self, row: tuple[Any, ...]) -> None: ...

    @abstractmethod
    def may_fire(self, row: tuple[Any, ...], window_start_ms: int) -> bool:
        """For the event of `row` (the last row added), whose window holds rows with ts_ms >
        `window_start_ms`."""


class ValueCounts(WindowAggregate):
    """How many rows of the window hold each non-null value of one field (a value leaves with
    its last row), and how many rows the window holds. Kinds subclass it for `may_fire`."""

    __slots__ = ("counts", "position", "rows")

    def __init__(self, position: int) -> None:
        self.position = position
        self.rows = 0
        self.counts: Counter[Any] = Counter()

    def add(self, row: tuple[Any, ...]) -> None:
        self.rows += 1
        value = row[self.position]
        if value is not None:
            self.counts[value] += 1

    def remove(self, row: tuple[Any, ...]) -> None:
        self.rows -= 1
        value = row[self.position]
        if value is not None:
            left = self.counts[value] - 1
            if left:
                self.counts[value] = left
            else:
                del self.counts[value]


class GraphPhase(IntEnum):
    """When a graph rule is judged in a batch: GRAPH rules see the batch's micro hits; COMPOSITE
    rules are judged after them and also see their hits."""

    GRAPH = 1
    COMPOSITE = 2


class GraphRule(Rule[C]):
    """A macro rule: judged per event on the event's account (`key_value` = the account id),
    after the batch's entity writes, from a `GraphView` the pipeline read for the whole batch.

    `GraphPhase.GRAPH` rules see the batch's micro hits; `GraphPhase.COMPOSITE` ones also see theirs."""

    phase: ClassVar[GraphPhase] = GraphPhase.GRAPH
    view: ClassVar[View] = "macro"

    @property
    def key_field(self) -> str:
        return "account_id"

    @property
    def window(self) -> Duration | None:
        return None  # not evaluated over time-series windows

    @property
    def hits_lookback(self) -> Duration | None:
        """How far back this rule looks at earlier hits (None: it does not use hits)."""
        return None

    def reach_query(self) -> ReachQuery | None:
        """The shared-identifier neighbourhood this rule needs for each batch account."""
        return None

    @functools.cached_property
    def query(self) -> ReachQuery:
        """`reach_query()` built once: `judge_graph` looks it up in `GraphView.reach` per event."""
        query = self.reach_query()
        if query is None:
            raise TypeError(f"{type(self).__name__} reads no neighbourhood: it has no reach query")
        return query

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        raise TypeError(f"{type(self).__name__} is a graph rule: the engine calls judge_graph")

    @abstractmethod
    def judge_graph(self, event: Transaction, view: GraphView) -> Finding | None:
        """Judge `event` from the graph view; pure, like `judge`."""


def window_evidence(event: Transaction, window: Sequence[Transaction], length: timedelta) -> dict[str, Any]:
    """Window bounds and contributing event ids (capped): the evidence most kinds carry."""
    return {
        "window_start": iso_ms(event.ts - length),
        "window_end": iso_ms(event.ts),
        "count": len(window),
        "event_ids": [x.event_id for x in window[-EVIDENCE_IDS_CAP:]],
    }


def rows_evidence(event: Transaction, window: Sequence[WindowRow], length: timedelta) -> dict[str, Any]:
    """`window_evidence` from compact rows (the same mapping for the same window)."""
    return {
        "window_start": iso_ms(event.ts - length),
        "window_end": iso_ms(event.ts),
        "count": len(window),
        "event_ids": [row[ROW_EVENT_ID] for row in window[-EVIDENCE_IDS_CAP:]],
    }


def split_at_burst(event: Transaction, window: Sequence[Transaction], burst: timedelta,
                   field_name: str) -> tuple[list[bool], list[object]]:
    """For each window event: whether it lies before the burst (`ts <= event.ts - burst`), and its
    value of `field_name`."""
    split = event.ts - burst
    return [x.ts <= split for x in window], [x.get(field_name) for x in window]


def split_rows_at_burst(event: Transaction, window: Sequence[WindowRow], burst: Duration,
                        position: int) -> tuple[list[bool], list[object]]:
    """`split_at_burst` over compact rows, the field at `position`."""
    split_ms = event.ts_ms - burst.ms
    return [row[ROW_TS] <= split_ms for row in window], [row[position] for row in window]


__all__ = [
    "BurstConfig",
    "Condition",
    "Duration",
    "EdgeSpec",
    "Finding",
    "Rule",
    "RuleConfig",
    "RuleContext",
    "View",
    "WindowAggregate",
    "WindowedConfig",
    "check_field_name",
    "check_key_name",
    "rows_evidence",
    "split_at_burst",
    "split_rows_at_burst",
    "window_evidence",
]
