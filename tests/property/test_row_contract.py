"""The typed row contract: kinds judge compact rows (`Rule.judge_rows`) on the hot path.

* every built-in windowed kind's row judge finds exactly what its `judge` finds (value and
  evidence) on the same window, rows laid out as the window cache lays them out;
* a kind written against `judge` alone, and a subclass that overrides `judge` of a kind that has
  a row judge, go through the default path (events rebuilt from rows, then `judge`), and the
  toolkit's reference check holds for them through the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.events import Transaction, WindowRow
from chalicelib.rules import Finding, Rule, WindowedConfig, load_rules_text, register_rule_kind
from chalicelib.rules.base import window_evidence
from chalicelib.rules.velocity import VelocityConfig, VelocityRule
from chalicelib.rules.window_rows import layouts_of
from fraudtools.testing import check_agrees_with_reference, register_reference, run_stream
from tests.strategies import BASE, PROPERTY_RULES, streams

RULES = load_rules_text(PROPERTY_RULES + """
  - {id: burst, kind: habit_burst, key: account_id, window: 10m, burst: 2m, factor: 2, threshold: 1,
     min_history: 2}
  - {id: burst-ip, kind: habit_burst, key: ip, window: 15m, burst: 5m, factor: 1.5, min_history: 1}
""", name="row-contract.yaml")
WINDOWED = [rule for rule in RULES.rules if rule.window is not None]


def rows_of(window: Sequence[Transaction], arrival: dict[str, int], fields: Sequence[str]) -> list[WindowRow]:
    """Rows as a store returns them (`TimeSeriesStore.window_rows`), with a trailing value the
    cache appends (the where-mask), which kinds must ignore."""
    return [(x.ts_ms, arrival[x.event_id], x.event_id, *(x.attributes if f == "attributes" else x.get(f)
                                                         for f in fields), 0b1011) for x in window]


def window_of(rule: Rule[Any], stream: Sequence[Transaction], index: int) -> list[Transaction]:
    """The rule's window for stream[index] (DESIGN.md semantics), sorted by (ts, arrival)."""
    event, length = stream[index], rule.window
    assert length is not None
    key = event.get(rule.key_field)
    inside = [(x.ts, i, x) for i, x in enumerate(stream[:index + 1])
              if x.get(rule.key_field) == key and rule.applies_to(x) and event.ts - length < x.ts <= event.ts]
    return [x for _, _, x in sorted(inside, key=lambda item: (item[0], item[1]))]


@settings(max_examples=150, deadline=None)
@given(stream=streams(max_size=30))
def test_every_kind_finds_from_rows_what_judge_finds_from_events(stream: list[Transaction]) -> None:
    firsts: dict[str, Transaction] = {}
    for event in stream:
        firsts.setdefault(event.event_id, event)
    unique = list(firsts.values())
    arrival = {e.event_id: seq for seq, e in enumerate(unique, start=1)}
    layouts = layouts_of(RULES)
    for rule in WINDOWED:
        layout = layouts[rule.key_field]
        for index, event in enumerate(unique):
            if event.get(rule.key_field) is None or not rule.applies_to(event):
                continue
            window = window_of(rule, unique, index)
            expected = rule.judge(event, window)
            found = rule.rows_judge()(event, rows_of(window, arrival, layout.fields), layout.positions)
            assert found == expected, (rule.id, event.event_id)


BURST_RULES = load_rules_text("""
version: 1
rules:
  - {id: burst, kind: habit_burst, key: account_id, window: 10m, burst: 2m, factor: 2, threshold: 1,
     min_history: 2}
  - {id: burst-ip, kind: habit_burst, key: ip, window: 15m, burst: 5m, factor: 1.5, min_history: 1,
     where: [{field: amount, op: lt, value: 9999}]}
  - {id: new-payee, kind: new_key_fan_out, key: ip, distinct: account_id, window: 15m, burst: 5m, threshold: 1,
     max_history: 1, where: [{field: amount, op: lt, value: 9999}]}
""", name="habit-burst.yaml")


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_habit_burst_through_the_pipeline_is_judge_on_the_exact_window(data: st.DataObject) -> None:
    """habit_burst's and new_key_fan_out's running aggregates (the history as rows age out of the
    burst) only skip events `judge` would not fire on: the pipeline's hits are `judge` on each event's window
    (new_key_fan_out's only once the store's observation, from the first event on, covers that window)."""
    stream = data.draw(streams(max_size=40, max_offset_s=1800))
    cuts = data.draw(st.lists(st.integers(1, 39), max_size=3).map(sorted))
    firsts: dict[str, Transaction] = {}
    for event in stream:
        firsts.setdefault(event.event_id, event)
    unique = list(firsts.values())
    expected = {}
    observed_since = unique[0].ts_ms
    for rule in BURST_RULES.rules:
        assert rule.window is not None
        for index, event in enumerate(unique):
            if rule.needs_full_history and observed_since > event.ts_ms - rule.window.ms:
                continue  # warming up
            if event.get(rule.key_field) is not None and rule.applies_to(event):
                finding = rule.judge(event, window_of(rule, unique, index))
                if finding is not None:
                    expected[rule.id, event.event_id] = (finding.value, dict(finding.evidence))
    hits = run_stream(BURST_RULES, stream, cuts=cuts).hits.values()
    assert {(h.rule_id, h.event_id): (h.value, h.evidence) for h in hits} == expected


def test_the_built_in_kinds_have_their_own_row_judge() -> None:
    for rule in WINDOWED:
        judge = rule.rows_judge()
        assert getattr(judge, "__self__", None) is rule and judge.__func__ is type(rule).judge_rows, rule.kind


# --------------------------------------------------------------------------- the slower path


class EchoConfig(WindowedConfig):
    kind: Literal["echo_count"] = "echo_count"


@register_rule_kind
class EchoCountRule(Rule[EchoConfig]):
    """A plugin kind written against `judge` only: fires on every event with its window's count
    and the amounts it saw (a field the engine must rebuild from the rows)."""

    config_model = EchoConfig

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        evidence = window_evidence(event, window, self.config.window)
        evidence["amounts"] = [str(x.amount) for x in window]
        return Finding(len(window), 0, evidence)


@register_reference("echo_count")
def _echo_reference(config: Any, event: Transaction, window: Sequence[Transaction], context: Any) -> Any:
    return len(window)


class LooseVelocityConfig(VelocityConfig):
    kind: Literal["loose_velocity"] = "loose_velocity"  # type: ignore[assignment]


@register_rule_kind
class LooseVelocityRule(VelocityRule):
    """Overrides `judge` of a kind that has a row judge: fires at the threshold, not above it.
    The inherited `judge_rows` (and aggregate) speak for velocity's judge, not this one."""

    config_model = LooseVelocityConfig

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        if len(window) < self.config.threshold:
            return None
        return Finding(len(window), self.config.threshold, {})


@register_reference("loose_velocity")
def _loose_reference(config: Any, event: Transaction, window: Sequence[Transaction], context: Any) -> Any:
    return len(window) if len(window) >= config.threshold else None


class UndeclaredConfig(WindowedConfig):
    kind: Literal["undeclared_rows"] = "undeclared_rows"


@register_rule_kind
class UndeclaredRowsRule(Rule[UndeclaredConfig]):
    """Has a row judge but does not say which fields it reads: the rows hold the whole event's
    fields, not `attributes.channel`, so the engine must not hand it rows."""

    config_model = UndeclaredConfig

    def judge(self, event: Transaction, window: Sequence[Transaction]) -> Finding | None:
        return Finding(len(window), 0, {"channels": [x.get("attributes.channel") for x in window]})

    def judge_rows(self, event: Transaction, window: Sequence[WindowRow],
                   positions: Mapping[str, int]) -> Finding | None:
        position = positions["attributes.channel"]
        return Finding(len(window), 0, {"channels": [row[position] for row in window]})


@register_reference("undeclared_rows")
def _undeclared_reference(config: Any, event: Transaction, window: Sequence[Transaction], context: Any) -> Any:
    return len(window)


SLOW_RULES = load_rules_text("""
version: 1
rules:
  - {id: echo, kind: echo_count, key: ip, window: 3m, where: [{field: amount, op: ge, value: 4.99}]}
  - {id: loose, kind: loose_velocity, key: account_id, window: 2m, threshold: 2}
  - {id: undeclared, kind: undeclared_rows, key: account_id, window: 1m}
""", name="slow-path.yaml")


def test_kinds_without_their_own_row_judge_take_the_default_path() -> None:
    for rule in SLOW_RULES.rules:
        assert getattr(rule.rows_judge(), "__self__", None) is not rule, rule.kind


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_the_toolkit_reference_check_holds_on_the_default_path(data: st.DataObject) -> None:
    stream = data.draw(streams(max_size=30))
    cuts = data.draw(st.lists(st.integers(1, 29), max_size=3).map(sorted))
    check_agrees_with_reference(SLOW_RULES, stream, cuts)


def test_the_default_path_rebuilds_the_fields_judge_reads() -> None:
    stream = [Transaction(event_id=f"e{i}", ts=BASE + timedelta(seconds=10 * i), account_id="ab"[i % 2],
                          amount=Decimal(amount), ip="ip-1") for i, amount in enumerate(["5", "7.25", "1", "120"])]
    echo = [h for h in run_stream(SLOW_RULES, stream).hits.values() if h.rule_id == "echo"]
    assert {h.event_id: h.evidence["amounts"] for h in echo} == {
        "e0": ["5"], "e1": ["5", "7.25"], "e3": ["5", "7.25", "120"]}


def test_each_kind_fires_in_the_comparison() -> None:
    """The comparison above is not vacuous: on this stream every kind's judge fires somewhere,
    and its row judge says the same."""
    places = [(48.14, 11.58), (40.71, -74.01)]
    stream = [Transaction(event_id=f"e{i}", ts=BASE + timedelta(seconds=20 * i), account_id="a",
                          amount=Decimal(amount), ip=f"ip-{i % 2}", device_id=f"d-{i % 3}", card_id="k-1",
                          lat=places[i % 2][0], lon=places[i % 2][1])
              for i, amount in enumerate(["1", "1", "1", "1", "300", "400", "20000", "2", "3"])]
    stream += [Transaction(event_id=f"f{i}", ts=BASE + timedelta(seconds=20 * i + 1), account_id=account,
                           amount=Decimal("3"), ip="ip-1") for i, account in enumerate("bcb")]
    arrival = {e.event_id: seq for seq, e in enumerate(stream, start=1)}
    layouts = layouts_of(RULES)
    fired: set[str] = set()
    for rule in WINDOWED:
        layout = layouts[rule.key_field]
        for index, event in enumerate(stream):
            if event.get(rule.key_field) is None or not rule.applies_to(event):
                continue
            window = window_of(rule, stream, index)
            expected = rule.judge(event, window)
            assert rule.rows_judge()(event, rows_of(window, arrival, layout.fields), layout.positions) == expected
            if expected is not None:
                fired.add(rule.kind)
    assert fired == {rule.kind for rule in WINDOWED}
