"""Ready-made properties of rules, checked on the real pipeline.

Two layers:

* `check_*` functions take a ruleset and one stream (and cuts) and raise `AssertionError` with
  a readable message when the property does not hold - call them from your own `@given` tests;
* `*_property(...)` factories return a ready Hypothesis test: assign it to a `test_*` name in a
  test module and pytest runs it, e.g. `test_agrees = agrees_with_reference_property(RULES)`.
  They run with no deadline under the active profile; pass `hypothesis_settings=settings(...)`
  to choose otherwise (a settings decorator cannot be applied twice).

The properties: the pipeline agrees with the reference on any stream; hits do not depend on how
the stream is cut into batches or on redelivery of any part of a batch; and, where the kind
declares it (`Monotonicity` in `fraudtools.testing.reference`): raising a threshold never adds
hits, widening the window never removes a hit or lowers its value, adding a `where` condition
never adds hits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.events import Transaction
from chalicelib.rules import Duration, RuleSet, load_rules_text
from chalicelib.settings import rules_plugins_allowed
from fraudtools.testing.harness import run_stream, split_at
from fraudtools.testing.reference import assert_hits_agree, number, reference_hits, reference_of
from fraudtools.testing.strategies import batch_cuts, conditions, pools_for, streams

Property = Callable[..., None]
#: Pipeline runs take varying time: no per-example deadline (a profile may still set max_examples).
_PIPELINE_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


# --------------------------------------------------------------------------- rulesets


def rules_from(rules: RuleSet | str) -> RuleSet:
    return rules if isinstance(rules, RuleSet) else load_rules_text(rules, name="<property rules>",
                                                                    plugins_allowed=rules_plugins_allowed())


def ruleset_of(ruleset: RuleSet, configs: Sequence[Mapping[str, Any]]) -> RuleSet:
    """A new ruleset with `configs` (rules.yaml mappings) and `ruleset`'s lists, validated as a file."""
    document = {"version": 1, "lists": {name: {"values": sorted(values)} for name, values in ruleset.lists.items()},
                "rules": list(configs)}
    return load_rules_text(yaml.safe_dump(document, sort_keys=False), name=f"<derived from {ruleset.source}>")


def rule_mapping(ruleset: RuleSet, rule_id: str) -> dict[str, Any]:
    config = next((c for c in ruleset.configs if c.id == rule_id), None)
    if config is None:
        raise KeyError(f"no rule {rule_id!r} in {ruleset.source}")
    return config.model_dump(mode="json", by_alias=True, exclude_defaults=True) | {"kind": rule_kind(ruleset, rule_id)}


def rule_kind(ruleset: RuleSet, rule_id: str) -> str:
    return str(next(c for c in ruleset.configs if c.id == rule_id).model_dump()["kind"])


def only(ruleset: RuleSet, rule_id: str, **changes: Any) -> RuleSet:
    """`ruleset` reduced to the one rule `rule_id`, with config `changes` applied (validated)."""
    return ruleset_of(ruleset, [rule_mapping(ruleset, rule_id) | changes])


# --------------------------------------------------------------------------- one-stream checks


def check_agrees_with_reference(ruleset: RuleSet, stream: Sequence[Transaction], cuts: Sequence[int] = ()) -> None:
    """The pipeline's hits on `stream` (delivered in batches cut at `cuts`) are the reference's."""
    run = run_stream(ruleset, stream, cuts=cuts)
    try:
        assert_hits_agree(run.hits.values(), reference_hits(ruleset, stream))
    finally:
        run.close()


def check_batching_independent(ruleset: RuleSet, stream: Sequence[Transaction],
                               cuts_a: Sequence[int], cuts_b: Sequence[int]) -> None:
    """Two ways of cutting the same stream into batches give the same hit records, evidence included."""
    one, two = run_stream(ruleset, stream, cuts=cuts_a), run_stream(ruleset, stream, cuts=cuts_b)
    try:
        assert one.hits == two.hits, f"batches cut at {list(cuts_a)} and at {list(cuts_b)} give different hits"
    finally:
        one.close()
        two.close()


def check_redelivery_harmless(ruleset: RuleSet, stream: Sequence[Transaction], cuts: Sequence[int],
                              batch: int, start: int, end: int) -> None:
    """Delivering records `start:end` of batch number `batch` again stores, judges and writes nothing."""
    run = run_stream(ruleset, stream, cuts=cuts)
    try:
        before = run.hits
        batches = split_at(run.records, cuts)
        again = batches[batch % len(batches)]
        start = min(start, len(again) - 1)
        end = min(max(end, start + 1), len(again))
        report = run.deliver(again[start:end])
        assert report.accepted == 0 and report.rejudged == 0 and not report.new_hits, (
            f"redelivering records {start}:{end} of batch {batch} had effects: {report.to_dict()}")
        assert run.hits == before
    finally:
        run.close()


def _hit_values(ruleset: RuleSet, stream: Sequence[Transaction], cuts: Sequence[int]) -> dict[str, Any]:
    run = run_stream(ruleset, stream, cuts=cuts)
    try:
        return {h.event_id: h.value for h in run.hits.values()}
    finally:
        run.close()


def check_threshold_monotone(ruleset: RuleSet, rule_id: str, stream: Sequence[Transaction],
                             field: str, raised: Any, cuts: Sequence[int] = ()) -> None:
    """With `field` raised to `raised`, the rule fires on a subset of the events it fired on."""
    base = _hit_values(only(ruleset, rule_id), stream, cuts)
    higher = _hit_values(only(ruleset, rule_id, **{field: raised}), stream, cuts)
    added = sorted(set(higher) - set(base))
    assert not added, f"raising {rule_id}.{field} to {raised} added hits on {added}"


def check_window_monotone(ruleset: RuleSet, rule_id: str, stream: Sequence[Transaction],
                          wider: Duration | timedelta | str, cuts: Sequence[int] = ()) -> None:
    """With a wider window, every hit stays, with a value at least as large."""
    longer = str(Duration.parse(wider))
    base = _hit_values(only(ruleset, rule_id), stream, cuts)
    wide = _hit_values(only(ruleset, rule_id, window=longer), stream, cuts)
    lost = sorted(set(base) - set(wide))
    assert not lost, f"widening {rule_id}'s window to {longer} removed hits on {lost}"
    for event_id, value in base.items():
        assert number(wide[event_id]) >= number(value), (  # type: ignore[operator]
            f"widening {rule_id}'s window to {longer} lowered the value on {event_id}: {value} -> {wide[event_id]}")


def check_where_monotone(ruleset: RuleSet, rule_id: str, stream: Sequence[Transaction],
                         condition: Mapping[str, Any], cuts: Sequence[int] = ()) -> None:
    """With one more `where` condition, the rule fires on a subset of the events it fired on."""
    mapping = rule_mapping(ruleset, rule_id)
    narrower = ruleset_of(ruleset, [mapping | {"where": [*mapping.get("where", []), dict(condition)]}])
    base = _hit_values(only(ruleset, rule_id), stream, cuts)
    added = sorted(set(_hit_values(narrower, stream, cuts)) - set(base))
    assert not added, f"adding where {dict(condition)} to {rule_id} added hits on {added}"


def _nonnegative(stream: Sequence[Transaction], field: str) -> bool:
    return all((v := number(e.get(field))) is None or v >= 0 for e in stream)


# --------------------------------------------------------------------------- ready Hypothesis tests


def _settings(custom: settings | None) -> settings:
    """The caller's settings, or no deadline (pipeline runs vary in time) over the active profile."""
    return custom if custom is not None else settings(**_PIPELINE_SETTINGS)  # type: ignore[arg-type]


def _streams_for(ruleset: RuleSet, stream: st.SearchStrategy[list[Transaction]] | None) -> Any:
    return stream if stream is not None else streams(reading=ruleset, bursts=0.05)


def agrees_with_reference_property(rules: RuleSet | str, *,
                                   stream: st.SearchStrategy[list[Transaction]] | None = None,
                                   hypothesis_settings: settings | None = None) -> Property:
    """A test: on any drawn stream, however cut into batches, the pipeline agrees with the reference."""
    ruleset = rules_from(rules)
    for rule in ruleset.micro_rules:
        reference_of(rule.kind)  # fail at import time when a kind has no reference

    @_settings(hypothesis_settings)
    @given(st.data())
    def agrees_with_reference(data: st.DataObject) -> None:
        drawn = data.draw(_streams_for(ruleset, stream), label="stream")
        check_agrees_with_reference(ruleset, drawn, data.draw(batch_cuts(len(drawn)), label="cuts"))

    return agrees_with_reference


def batching_and_redelivery_property(rules: RuleSet | str, *,
                                     stream: st.SearchStrategy[list[Transaction]] | None = None,
                                     hypothesis_settings: settings | None = None) -> Property:
    """A test: hits do not depend on batch cuts, and redelivering part of a batch changes nothing."""
    ruleset = rules_from(rules)

    @_settings(hypothesis_settings)
    @given(st.data())
    def batching_and_redelivery(data: st.DataObject) -> None:
        drawn = data.draw(_streams_for(ruleset, stream), label="stream")
        cuts_a = data.draw(batch_cuts(len(drawn)), label="cuts a")
        cuts_b = data.draw(batch_cuts(len(drawn)), label="cuts b")
        check_batching_independent(ruleset, drawn, cuts_a, cuts_b)
        batch, start, end = data.draw(st.tuples(st.integers(0, 6), st.integers(0, 40), st.integers(1, 41)),
                                      label="redelivered batch, start, end")
        check_redelivery_harmless(ruleset, drawn, cuts_a, batch, start, end)

    return batching_and_redelivery


def monotonicity_property(rules: RuleSet | str, rule_id: str, *,
                          stream: st.SearchStrategy[list[Transaction]] | None = None,
                          hypothesis_settings: settings | None = None) -> Property:
    """A test of every monotonicity property the rule's kind declares (see `Monotonicity`)."""
    ruleset = rules_from(rules)
    kind = rule_kind(ruleset, rule_id)
    _, declared = reference_of(kind)
    mapping = rule_mapping(ruleset, rule_id)
    thresholds = [f for f in declared.thresholds if f in _defaults(ruleset, rule_id)]
    if not (thresholds or declared.window or declared.where):
        raise ValueError(f"kind {kind!r} declares no monotonicity property: nothing to test for {rule_id}")
    pools, amounts = pools_for(ruleset)

    @_settings(hypothesis_settings)
    @given(st.data())
    def monotone(data: st.DataObject) -> None:
        drawn = data.draw(_streams_for(ruleset, stream), label="stream")
        cuts = data.draw(batch_cuts(len(drawn)), label="cuts")
        for field in thresholds:
            current = _current(ruleset, rule_id, field)
            raised = _raise(current, data.draw(st.integers(1, 5), label=f"raise {field} by"))
            check_threshold_monotone(ruleset, rule_id, drawn, field, raised, cuts)
        holds = declared.nonnegative is None or _nonnegative(drawn, str(mapping.get(declared.nonnegative, "amount")))
        if declared.window and holds:
            window = Duration.parse(mapping["window"])
            extra = data.draw(st.integers(1, 8), label="widen window by ticks") * timedelta(seconds=15)
            check_window_monotone(ruleset, rule_id, drawn, Duration.parse(f"{int((window + extra).total_seconds())}s"),
                                  cuts)
        if declared.where and holds:
            check_where_monotone(ruleset, rule_id, drawn,
                                 data.draw(conditions(amounts=amounts, pools=pools), label="extra where"), cuts)

    return monotone


def _defaults(ruleset: RuleSet, rule_id: str) -> dict[str, Any]:
    config = next(c for c in ruleset.configs if c.id == rule_id)
    return {k: v for k, v in config.model_dump(mode="json").items() if v is not None}


def _current(ruleset: RuleSet, rule_id: str, field: str) -> Any:
    return _defaults(ruleset, rule_id)[field]


def _raise(value: Any, steps: int) -> Any:
    """`value` raised by a step that matters for it: whole numbers by `steps`, others by 10% each."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value + steps
    exact = number(value)
    assert exact is not None, f"cannot raise non-numeric threshold {value!r}"
    return str(float(exact * (1 + steps / 10)) if exact else float(steps))


def rule_properties(rules: RuleSet | str, rule_id: str, *,
                    stream: st.SearchStrategy[list[Transaction]] | None = None,
                    hypothesis_settings: settings | None = None) -> dict[str, Property]:
    """Every ready-made property that applies to one rule, by name (for `pytest.mark.parametrize`)."""
    ruleset = only(rules_from(rules), rule_id)
    options: dict[str, Any] = {"stream": stream, "hypothesis_settings": hypothesis_settings}
    found = {"agrees_with_reference": agrees_with_reference_property(ruleset, **options),
             "batching_and_redelivery": batching_and_redelivery_property(ruleset, **options)}
    _, declared = reference_of(rule_kind(ruleset, rule_id))
    if declared.thresholds or declared.window or declared.where:
        found["monotonicity"] = monotonicity_property(ruleset, rule_id, **options)
    return found


__all__ = [
    "agrees_with_reference_property",
    "batching_and_redelivery_property",
    "check_agrees_with_reference",
    "check_batching_independent",
    "check_redelivery_harmless",
    "check_threshold_monotone",
    "check_where_monotone",
    "check_window_monotone",
    "monotonicity_property",
    "only",
    "rule_properties",
    "ruleset_of",
]
