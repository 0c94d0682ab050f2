"""`rules test [FILE]`: run every rule's `examples:` through the real pipeline.

Each example gets its own throw-away embedded stores (time series, graph): its `history` is
delivered as one batch, in order, then its `event` as a batch of its own, to the *whole* ruleset
(composite rules need the rules they combine). The example passes when the rule's hit on the
event exists exactly when `fires: true`. A failure names the rule, the example, the computed
aggregate, the threshold, the window and why (the same explanation `explain` prints).

Example events may leave out `event_id` (made up from the rule id and position), `account_id`
(`acct-1`) and `amount` (10). An example's `observed_since` is delivered first, as an event of
account `observation-start` at that time: the store's observation then starts there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from chalicelib.events import Transaction
from chalicelib.explanation import RuleExplanation, as_judged, explain_event
from chalicelib.rules import RuleSet, RulesFileError, limits
from chalicelib.rules.examples import MAX_EXAMPLES_PER_RULE, ExampleFile, RuleExample
from chalicelib.rules.loader import parse_yaml, read_beside

DEFAULT_ACCOUNT = "acct-1"
DEFAULT_AMOUNT = 10
#: the account of the event that starts an example's observation at its `observed_since`
OBSERVATION_ACCOUNT = "observation-start"
_FILE_ADAPTER: TypeAdapter[list[RuleExample]] = TypeAdapter(list[RuleExample])


class ExamplesError(ValueError):
    """An `examples:` entry that cannot be run (unreadable file, invalid event)."""


@dataclass(frozen=True)
class ExampleOutcome:
    rule_id: str
    label: str
    expected: bool
    fired: bool | None = None  # None: the example could not run
    explanation: RuleExplanation | None = None
    error: str | None = None
    expected_decision: str | None = None  # the example's `decision:`, if it states one
    decision: str | None = None  # what the decision policy made of the event's hits

    @property
    def passed(self) -> bool:
        return self.error is None and self.fired == self.expected and self.decision == self.expected_decision

    def message(self) -> str:
        head = f"{self.rule_id}, {self.label}"
        if self.error is not None:
            return f"{head}: cannot run: {self.error}"
        if self.fired == self.expected and self.decision != self.expected_decision:
            return f"{head}: expected the decision {self.expected_decision}, but it was {self.decision}"
        want = "to fire" if self.expected else "not to fire"
        got = "it fired" if self.fired else "it did not fire"
        text = f"{head}: expected {want}, but {got}"
        x = self.explanation
        if x is None:
            return text
        text += f": aggregate {_show(x.aggregate)}, threshold {_show(x.threshold)}"
        if x.window_start is not None and x.contributing_count is not None:
            text += f"; window ({x.window_start}, {x.window_end}] of {x.key_field}={x.key_value} holds " \
                    f"{x.contributing_count} events {x.contributing}"
        if x.reason:
            text += f" ({x.verdict}: {x.reason})"
        return text


def _show(value: Any) -> str:
    return "n/a" if value is None else str(value)


def resolve_examples(rule_id: str, entries: Sequence[RuleExample | ExampleFile],
                     base_dir: Path) -> list[tuple[str, RuleExample | ExamplesError]]:
    """(label, example) for every inline example and every example in the named files; a file
    that cannot be used gives (label, the error) and the other entries still run."""
    out: list[tuple[str, RuleExample | ExamplesError]] = []
    for index, entry in enumerate(entries, 1):
        if isinstance(entry, RuleExample):
            out.append((f"example {index}" + (f" ({entry.name})" if entry.name else ""), entry))
            continue
        try:
            examples = _read_examples_file(base_dir, entry.file)
        except ExamplesError as exc:
            out.append((entry.file, exc))
            continue
        out += [(f"{entry.file} #{n}" + (f" ({e.name})" if e.name else ""), e) for n, e in enumerate(examples, 1)]
    return out


def _read_examples_file(base_dir: Path, name: str) -> list[RuleExample]:
    """Under the rules file's own bounds: a plain name next to it, its size cap, bounded YAML."""
    path = base_dir / name
    try:
        text = read_beside(base_dir, name, "examples file", limits.MAX_EXAMPLES_FILE_BYTES).decode("utf-8")
        data = parse_yaml(text, str(path))
    except RulesFileError as exc:
        raise ExamplesError("; ".join(str(i) for i in exc.issues)) from None
    except ValueError as exc:  # UnicodeDecodeError too
        raise ExamplesError(f"cannot use examples file {path}: {exc}") from None
    try:
        examples = _FILE_ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise ExamplesError(f"examples file {path} is not a list of examples: {problems}") from None
    if len(examples) > MAX_EXAMPLES_PER_RULE:
        raise ExamplesError(f"{path} holds more than {MAX_EXAMPLES_PER_RULE} examples")
    return examples


def _filled(fields: Mapping[str, Any], event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "account_id": DEFAULT_ACCOUNT, "amount": DEFAULT_AMOUNT, **fields}


def run_example(ruleset: RuleSet, rule_id: str, label: str, example: RuleExample, number: int) -> ExampleOutcome:
    from fraudtools.cli.scratch import scratch_run, stream_records

    stem = f"{rule_id}-ex{number}"
    history = [_filled(h, f"{stem}-h{j}") for j, h in enumerate(example.history, 1)]
    event = _filled(example.event, stem)
    # the store's observation starts with its first event: one of no rule's keys, at observed_since
    opening = [] if example.observed_since is None else [
        {"event_id": f"{stem}-observed-since", "account_id": OBSERVATION_ACCOUNT, "amount": 0,
         "ts": example.observed_since}]
    try:
        for fields in (*opening, *history, event):
            Transaction.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        return ExampleOutcome(rule_id, label, example.fires,
                              error=f"invalid event {fields.get('event_id')}: {problems}")
    payloads = [json.dumps(f, default=str).encode() for f in (*opening, *history, event)]
    records = stream_records(payloads)
    with scratch_run(ruleset) as run:
        if opening:
            run.deliver(records[:1])
            records = records[1:]
        earlier = run.deliver(records[:-1]) if history else []
        (delivered,) = run.deliver(records[-1:])
        seen = as_judged(earlier, delivered)  # an event id of the history: the first delivery wins
        hits = {h.rule_id: h for h in run.hits if h.event_id == seen.event.event_id}
        observed_since = run.pipeline.observed_since()
    decision = None if example.decision is None else ruleset.policy.decide(
        (h.rule_id, h.mode, h.severity) for h in hits.values())
    explanation = next(x for x in explain_event(ruleset, seen.event, seen.earlier, hits,
                                                observed_since=observed_since) if x.rule_id == rule_id)
    if seen.redelivered:
        explanation = replace(explanation, reason=f"the event's id {seen.event.event_id} is already in the "
                              "history, which the engine judged; a redelivery is not judged again. "
                              + explanation.reason)
    return ExampleOutcome(rule_id, label, example.fires, fired=rule_id in hits, explanation=explanation,
                          expected_decision=example.decision, decision=decision)


def run_all_examples(ruleset: RuleSet, base_dir: Path, *, require: bool = False) -> list[ExampleOutcome]:
    """Every example of every enabled rule; with `require`, a rule without examples is a failure."""
    enabled = {r.id for r in ruleset.rules}
    outcomes: list[ExampleOutcome] = []
    for config in ruleset.configs:
        if config.id not in enabled:
            continue
        examples = resolve_examples(config.id, config.examples, base_dir)
        if require and not examples:
            outcomes.append(ExampleOutcome(config.id, "examples", True, error="the rule has no examples"))
        for number, (label, example) in enumerate(examples, 1):
            if isinstance(example, ExamplesError):
                outcomes.append(ExampleOutcome(config.id, label, True, error=str(example)))
            else:
                outcomes.append(run_example(ruleset, config.id, label, example, number))
    return outcomes


def cmd_rules_test(args: argparse.Namespace) -> int:
    from fraudtools.cli.runner import load_rules_or_exit

    ruleset = load_rules_or_exit(args.file)
    outcomes = run_all_examples(ruleset, args.file.resolve().parent, require=args.require_examples)
    failed = [o for o in outcomes if not o.passed]
    by_rule: dict[str, list[ExampleOutcome]] = {}
    for outcome in outcomes:
        by_rule.setdefault(outcome.rule_id, []).append(outcome)
    for rule_id, mine in by_rule.items():
        bad = [o for o in mine if not o.passed]
        print(f"{'FAIL' if bad else 'ok  '} {rule_id}: {len(mine) - len(bad)} of {len(mine)} examples pass")
    for outcome in failed:
        print(f"FAILED {outcome.message()}", file=sys.stderr)
    without = [r.id for r in ruleset.rules if r.id not in by_rule]
    print(f"{args.file}: {len(outcomes) - len(failed)} of {len(outcomes)} examples pass"
          + (f"; rules without examples: {', '.join(without)}" if without else ""))
    return 1 if failed else 0
