from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from chalicelib.events import Transaction
from chalicelib.rules import RulesFileError, load_rules_file, load_rules_text
from chalicelib.rules.registry import ENTRY_POINT_GROUP, kinds
from tests.conftest import PROJECT

GOOD = """\
version: 1
rules:
  - id: ip-fanout-10m
    kind: fan_out
    key: ip
    distinct: account_id
    window: 10m
    threshold: 3
    severity: high
    edge: {label: IP_FANOUT, from: account_id, to: ip}
  - id: velocity-1m
    kind: velocity
    key: account_id
    window: 1m
    threshold: 5
"""


def issues_of(text: str) -> list:
    with pytest.raises(RulesFileError) as caught:
        load_rules_text(textwrap.dedent(text), name="rules.yaml")
    return caught.value.issues


def test_default_rules_file_is_valid_and_carries_the_reference_detectors() -> None:
    ruleset = load_rules_file(PROJECT / "rules.yaml")
    by_id = {c.id: c for c in ruleset.configs}
    high_value = by_id["high-value-5m"]
    assert (high_value.kind, high_value.key, str(high_value.window), high_value.threshold) == (
        "sum_over", "account_id", "5m", 50000)
    repeat = by_id["repeat-500-15m"]
    assert (repeat.kind, str(repeat.window), repeat.threshold) == ("velocity", "15m", 5)
    assert [(c.field, c.op, c.value) for c in repeat.where] == [("amount", "eq", 500)]
    built_in = {"velocity", "fan_out", "sum_over", "amount_spike", "first_seen", "geo_velocity", "list_match"}
    assert built_in <= {c.kind for c in ruleset.configs}


def test_valid_file_loads_with_a_stable_content_version() -> None:
    one = load_rules_text(GOOD)
    reformatted = load_rules_text(GOOD.replace("edge: {label: IP_FANOUT, from: account_id, to: ip}",
                                               "edge:\n      label: IP_FANOUT\n      from: account_id\n      to: ip"))
    changed = load_rules_text(GOOD.replace("threshold: 5", "threshold: 6"))
    assert [r.id for r in one.rules] == ["ip-fanout-10m", "velocity-1m"]
    assert one.version == reformatted.version  # layout does not matter
    assert one.version != changed.version  # meaning does
    assert len(one.version) == 12


@pytest.mark.parametrize(("text", "line", "rule_id", "field", "words"), [
    ("""\
     version: 1
     rules:
       - id: r1
         kind: velocityy
         window: 1m
         threshold: 1
     """, 3, "r1", None, "unknown kind 'velocityy'"),
    ("""\
     version: 1
     rules:
       - id: r1
         kind: velocity
         window: 1m
         threshold: 1
         treshold: 2
     """, 7, "r1", "treshold", "unknown key (did you mean 'threshold'?)"),
    ("""\
     version: 1
     rules:
       - id: r1
         kind: velocity
         window: ten minutes
         threshold: 1
     """, 5, "r1", "window", "invalid duration"),
    ("""\
     version: 1
     rules:
       - id: r1
         kind: velocity
         window: 0m
         threshold: 1
     """, 5, "r1", "window", "longer than zero"),
    ("""\
     version: 1
     rules:
       - id: r1
         kind: velocity
         window: 1m
         threshold: 1
       - id: r1
         kind: velocity
         window: 2m
         threshold: 1
     """, 7, "r1", "id", "duplicate rule id"),
    ("""\
     version: 1
     rules:
       - id: r1
         kind: fan_out
         key: ip
         window: 1m
         threshold: 1
     """, 3, "r1", "distinct", "Field required"),
    ("""\
     version: 1
     rules:
       - id: r1
         kind: velocity
         key: ipaddress
         window: 1m
         threshold: 1
     """, 5, "r1", "key", "unknown event field 'ipaddress'"),
    ("""\
     version: 1
     rules:
       - id: r1
         kind: amount_spike
         window: 1h
     """, 3, "r1", None, "exactly one of 'factor' or 'zscore'"),
    ("""\
     version: 1
     rules:
       - id: r1
         kind: list_match
         field: ip
         list: nowhere
     """, 6, "r1", "list", "unknown list 'nowhere'"),
    ("""\
     version: 1
     rules:
       - id: r1
         kind: velocity
         window: 1m
         threshold: 1
         where:
           - {field: amount, op: between, value: 3}
     """, 8, "r1", "where.op", "Input should be"),
    ("""\
     version: 1
     rules:
       - id: r1
         kind: velocity
         window: 1m
         window: 2m
         threshold: 1
     """, 6, None, None, "duplicate key 'window'"),
    ("""\
     version: 1
     rules:
       - id: r1
         kind: velocity
         window: [1m
     """, None, None, None, "not valid YAML"),
    ("""\
     version: 2
     rules: []
     """, 1, None, "version", "Input should be 1"),
])
def test_each_kind_of_invalid_file_is_located(text: str, line: int | None, rule_id: str | None,
                                              field: str | None, words: str) -> None:
    found = issues_of(text)
    assert len(found) >= 1
    issue = found[0]
    assert words in issue.message
    assert issue.file == "rules.yaml"
    if line is not None:
        assert issue.line == line
    assert issue.rule_id == rule_id
    assert issue.field == field


def test_every_problem_is_reported_at_once() -> None:
    found = issues_of("""\
        version: 1
        rules:
          - {id: r1, kind: velocity, window: 1m, threshold: -1}
          - {id: r2, kind: velocity, window: 1x, threshold: 1}
        """)
    assert {(i.rule_id, i.field) for i in found} == {("r1", "threshold"), ("r2", "window")}
    assert "rules.yaml:3 rule 'r1' field 'threshold'" in str(found[0])


def test_list_from_file_relative_to_rules_file(tmp_path: Path) -> None:
    (tmp_path / "bad-ips.txt").write_text("# one per line\n203.0.113.7\n\n198.51.100.1\n")
    (tmp_path / "rules.yaml").write_text(textwrap.dedent("""\
        version: 1
        lists:
          bad: {file: bad-ips.txt}
        rules:
          - {id: blocked, kind: list_match, field: ip, list: bad}
        """))
    ruleset = load_rules_file(tmp_path / "rules.yaml")
    assert ruleset.lists["bad"] == frozenset({"203.0.113.7", "198.51.100.1"})
    before = ruleset.version
    (tmp_path / "bad-ips.txt").write_text("203.0.113.7\n")
    assert load_rules_file(tmp_path / "rules.yaml").version != before  # list content is part of the version


def test_disabled_rules_are_validated_but_not_run() -> None:
    ruleset = load_rules_text(GOOD.replace("    threshold: 5", "    threshold: 5\n    enabled: false"))
    assert [r.id for r in ruleset.rules] == ["ip-fanout-10m"]
    assert len(ruleset.configs) == 2


def test_third_party_kind_from_plugins_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PROJECT / "examples"))
    ruleset = load_rules_text(textwrap.dedent("""\
        version: 1
        plugins: [average_over_kind]
        rules:
          - {id: avg-ticket-1h, kind: average_over, window: 1h, threshold: 1000, min_count: 2}
        """), plugins_allowed=("some_other_module", "average_over_kind"))
    rule = ruleset.rules[0]
    assert type(rule).__name__ == "AverageOverRule"
    events = [Transaction(event_id=f"e{i}", ts=i * 1000, account_id="a", amount=a)
              for i, a in enumerate([900, 1200, 1000])]
    assert rule.judge(events[1], events[:2]) is not None  # mean 1050 > 1000
    assert rule.judge(events[2], events[1:]) is not None  # mean 1100
    assert rule.judge(events[0], events[:1]) is None  # below min_count
    assert rule.judge(events[2], [events[0], events[2]]) is None  # mean 950


def test_plugin_that_cannot_be_imported_is_a_located_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RULES_PLUGINS_ALLOWED", "no_such_module_here")
    found = issues_of("""\
        version: 1
        plugins: [no_such_module_here]
        rules: []
        """)
    assert found[0].line == 2 and "no_such_module_here" in found[0].message


def test_third_party_kind_from_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real installed distribution as importlib.metadata sees one: a dist-info dir on sys.path.
    dist = tmp_path / "fraud_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fraud-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nmax_amount = max_amount_kind\n")
    (tmp_path / "max_amount_kind.py").write_text(textwrap.dedent("""\
        from typing import Literal
        from decimal import Decimal
        from chalicelib.rules import Finding, Rule, RuleConfig, register_rule_kind

        class MaxAmountConfig(RuleConfig):
            kind: Literal["max_amount"] = "max_amount"
            threshold: Decimal

        @register_rule_kind
        class MaxAmountRule(Rule[MaxAmountConfig]):
            config_model = MaxAmountConfig
            def judge(self, event, window):
                if event.amount > self.config.threshold:
                    return Finding(event.amount, self.config.threshold)
                return None
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("chalicelib.rules.registry._entry_points_loaded", False)
    sys.modules.pop("max_amount_kind", None)
    assert "max_amount" in kinds()
    ruleset = load_rules_text("version: 1\nrules:\n  - {id: big, kind: max_amount, threshold: 100}\n")
    assert ruleset.rules[0].judge(Transaction(event_id="e", ts=0, account_id="a", amount=101), ()) is not None
