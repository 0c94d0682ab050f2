"""A rules file can never take the engine down: every bound is a located error of `rules check`,
and loading refuses hostile YAML before anything walks it."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from chalicelib.events import Transaction
from chalicelib.rules import Duration, RulesFileError, limits, load_rules_file, load_rules_text
from chalicelib.rules import loader as rules_loader
from chalicelib.settings import Settings, rules_plugins_allowed
from fraudtools.cli import main
from tests.conftest import PROJECT
from tests.fakes import memory_pipeline, raw_records

HOSTILE = sorted((PROJECT / "tests" / "fixtures" / "hostile-rules").glob("*.yaml"))


def expected_fragment(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: <error fragment>'"
    return first.removeprefix("# expect: ")


def issues_of(text: str, plugins_allowed: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(RulesFileError) as caught:
        load_rules_text(textwrap.dedent(text), name="rules.yaml", plugins_allowed=plugins_allowed)
    return [str(i) for i in caught.value.issues]


def test_the_hostile_corpus_is_there() -> None:
    assert len(HOSTILE) >= 30


@pytest.mark.parametrize("path", HOSTILE, ids=[p.stem for p in HOSTILE])
def test_rules_check_refuses_each_hostile_file_with_a_located_error(
        path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rules", "check", str(path)])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert expected_fragment(path) in err
    assert re.search(rf"{re.escape(str(path))}:\d+", err), err  # file:line
    assert "Traceback" not in err


def test_the_alias_bomb_is_refused_by_the_real_command_without_a_traceback() -> None:
    path = PROJECT / "tests" / "fixtures" / "hostile-rules" / "alias-bomb-in-where.yaml"
    assert path.stat().st_size < 700  # the billion laughs in a few hundred bytes
    done = subprocess.run([sys.executable, "-m", "chalicelib", "rules", "check", str(path)], cwd=PROJECT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "alias-bomb-in-where.yaml:11: refused: more than 200000 values" in done.stderr
    assert "Traceback" not in done.stderr


def test_durations_are_bounded_before_a_timedelta_is_built() -> None:
    assert Duration.parse("400d") == timedelta(days=400)
    assert Duration.parse("9600h") == timedelta(days=400)
    for text in ("401d", "9601h", "34560001s", "999999999d", "99999999999d", "9" * 40 + "d"):
        with pytest.raises(ValueError, match="longer than the maximum of 400d"):
            Duration.parse(text)
    with pytest.raises(ValueError, match="longer than the maximum"):
        Duration.parse(timedelta(days=10_000))


def test_a_400_day_window_judges_the_earliest_possible_event() -> None:
    # The bound is what keeps `ts - window` representable: the old crash was OverflowError here.
    ruleset = load_rules_text("version: 1\nrules:\n  - {id: v, kind: velocity, window: 400d, threshold: 0}\n")
    report = memory_pipeline(ruleset).process(raw_records([Transaction(event_id="e", ts=0, account_id="a", amount=1)]))
    assert report.failed_from is None and dict(report.hits) == {"v": 1}
    assert report.new_hits[0].evidence["window_start"].startswith("1968-11-27")


def test_a_file_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    big = "version: 1\nrules: []\n" + "#" * limits.MAX_FILE_BYTES
    path = tmp_path / "rules.yaml"
    path.write_text(big)
    with pytest.raises(RulesFileError, match=f"larger than {limits.MAX_FILE_BYTES} bytes"):
        load_rules_file(path)
    with pytest.raises(RulesFileError, match=f"larger than {limits.MAX_FILE_BYTES} bytes"):
        load_rules_text(big)


def test_safe_loading_still_refuses_python_tags() -> None:
    found = issues_of("""\
        version: 1
        rules: !!python/object/apply:os.system [echo pwned]
        """)
    assert "could not determine a constructor" in found[0]


def test_a_broken_file_shows_every_problem_in_one_run() -> None:
    found = issues_of("""\
        version: 1
        colour: red
        plugins: [os]
        lists:
          bad: {values: [x], fil: y}
        rules:
          - {id: r1, kind: velocity, window: 999999999d, threshold: 1}
          - {id: r1, kind: sum_over, window: 5m, threshold: -1000}
          - {id: c, kind: composite, rules: {nope: 1}, threshold: -1}
          - {id: m, kind: list_match, field: ip, list: nowhere, colour: red}
        """)
    assert found == [
        "rules.yaml:2 field 'colour': unknown key (allowed keys: version, plugins, lists, rules, decisions)",
        "rules.yaml:3: plugin 'os' is not allowed: add it to the RULES_PLUGINS_ALLOWED setting of the engine "
        "(now empty: no plugin may be imported)",
        "rules.yaml:5 field 'lists.bad.fil': unknown key (did you mean 'file'?)",
        "rules.yaml:7 rule 'r1' field 'window': duration '999999999d' is longer than the maximum of 400d",
        "rules.yaml:8 rule 'r1' field 'threshold': Input should be greater than or equal to 0 "
        "(the valid range of each field: docs/RULE_KINDS.md, Bounds)",
        "rules.yaml:8 rule 'r1' field 'id': duplicate rule id (first used by rules[0])",
        "rules.yaml:9 rule 'c' field 'threshold': Input should be greater than or equal to 0 "
        "(the valid range of each field: docs/RULE_KINDS.md, Bounds)",
        "rules.yaml:9 rule 'c' field 'rules': refers to unknown rule 'nope'",
        "rules.yaml:10 rule 'm' field 'colour': unknown key (allowed keys: id, description, severity, mode, "
        "enabled, where, edge, examples, kind, field, list, ignore_case)",
    ]


def test_where_values_keep_their_meaning() -> None:
    ruleset = load_rules_text(textwrap.dedent("""\
        version: 1
        rules:
          - id: v
            kind: velocity
            window: 1m
            threshold: 0
            where:
              - {field: ip, op: in, value: [10.0.0.1, 10.0.0.2]}
              - {field: amount, op: ge, value: 1000000000000}
        """))
    rule = ruleset.rules[0]
    event = Transaction(event_id="e", ts=0, account_id="a", amount="1000000000000", ip="10.0.0.2")
    assert rule.applies_to(event)
    assert not rule.applies_to(event.model_copy(update={"ip": "10.0.0.3"}))


@pytest.mark.parametrize(("allowed", "ok"), [
    ("", False),
    ("allowlist_probe", False),  # a module name, not a string prefix
    ("allowlist_probe_mod", True),
    (" other , allowlist_probe_mod ", True),
])
def test_plugins_load_only_from_the_allow_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allowed: str,
                                                ok: bool) -> None:
    (tmp_path / "allowlist_probe_mod.py").write_text("IMPORTED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "allowlist_probe_mod", raising=False)
    text = "version: 1\nplugins: [allowlist_probe_mod]\nrules: []\n"
    try:
        if ok:
            load_rules_text(text, plugins_allowed=rules_plugins_allowed({"RULES_PLUGINS_ALLOWED": allowed}))
        else:
            with pytest.raises(RulesFileError, match="plugin 'allowlist_probe_mod' is not allowed"):
                load_rules_text(text, plugins_allowed=rules_plugins_allowed({"RULES_PLUGINS_ALLOWED": allowed}))
        assert ("allowlist_probe_mod" in sys.modules) is ok  # refused before any import
    finally:
        sys.modules.pop("allowlist_probe_mod", None)


def test_the_allow_list_is_a_setting_and_can_be_passed_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env({"RULES_PLUGINS_ALLOWED": " acme_rules, b.c ,"}).rules_plugins_allowed == (
        "acme_rules", "b.c")
    assert Settings.from_env({}).rules_plugins_allowed == ()
    monkeypatch.setenv("RULES_PLUGINS_ALLOWED", "os")
    with pytest.raises(RulesFileError, match="plugin 'os' is not allowed"):
        load_rules_text("version: 1\nplugins: [os]\nrules: []\n", plugins_allowed=("acme_rules",))


def test_submodules_of_an_allowed_package_are_allowed() -> None:
    assert rules_loader._plugin_allowed("acme_rules.velocity2", ["acme_rules"])
    assert not rules_loader._plugin_allowed("acme_rules_evil", ["acme_rules"])


def test_a_plugin_that_exits_or_whose_rule_cannot_be_built_is_a_located_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    (tmp_path / "fragile_kind.py").write_text(textwrap.dedent("""\
        from typing import Literal
        from chalicelib.rules import Rule, RuleConfig, register_rule_kind

        class FragileConfig(RuleConfig):
            kind: Literal["fragile"] = "fragile"

        @register_rule_kind
        class FragileRule(Rule[FragileConfig]):
            config_model = FragileConfig

            def __init__(self, config, context):
                raise RuntimeError("needs a model file that is not there")

            def judge(self, event, window):
                return None
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        found = issues_of("""\
            version: 1
            plugins: [exits_on_import, fragile_kind]
            rules:
              - {id: f, kind: fragile}
            """, plugins_allowed=("exits_on_import", "fragile_kind"))
    finally:
        sys.modules.pop("exits_on_import", None)
        sys.modules.pop("fragile_kind", None)
        from chalicelib.rules import registry

        registry._KINDS.pop("fragile", None)
    assert found == [
        "rules.yaml:2: plugin 'exits_on_import' could not be imported: SystemExit: 3",
        "rules.yaml:4 rule 'f': rule could not be built: RuntimeError: needs a model file that is not there",
    ]


def test_a_plugin_config_that_raises_is_a_located_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pydantic passes anything but ValueError/AssertionError through: a plugin config can raise it.
    (tmp_path / "raising_config_kind.py").write_text(textwrap.dedent("""\
        from typing import Literal
        from pydantic import model_validator
        from chalicelib.rules import Rule, RuleConfig, register_rule_kind

        class RaisingConfig(RuleConfig):
            kind: Literal["raising_config"] = "raising_config"

            @model_validator(mode="after")
            def _check(self):
                raise OverflowError("date value out of range")

        @register_rule_kind
        class RaisingRule(Rule[RaisingConfig]):
            config_model = RaisingConfig

            def judge(self, event, window):
                return None
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        found = issues_of("""\
            version: 1
            plugins: [raising_config_kind]
            rules:
              - {id: ok, kind: velocity, window: 1m, threshold: 1}
              - {id: r, kind: raising_config}
              - {id: bad, kind: velocity, window: 1x, threshold: 1}
            """, plugins_allowed=["raising_config_kind"])
        assert found == [
            "rules.yaml:5 rule 'r': rule could not be validated: OverflowError: date value out of range",
            "rules.yaml:6 rule 'bad' field 'window': invalid duration '1x': use a whole number followed by s, m, h "
            "or d (e.g. 10m)",
        ]
    finally:
        sys.modules.pop("raising_config_kind", None)
        from chalicelib.rules import registry

        registry._KINDS.pop("raising_config", None)


def test_a_list_file_larger_than_the_limit_is_a_located_error(tmp_path: Path) -> None:
    with (tmp_path / "huge.txt").open("wb") as handle:
        handle.truncate(limits.MAX_LIST_FILE_BYTES + 1)  # sparse: no disk used
    (tmp_path / "rules.yaml").write_text(textwrap.dedent("""\
        version: 1
        lists:
          huge: {file: huge.txt}
        rules: []
        """))
    with pytest.raises(RulesFileError) as caught:
        load_rules_file(tmp_path / "rules.yaml")
    assert [(i.line, i.field) for i in caught.value.issues] == [(3, "file")]
    assert f"list file is larger than {limits.MAX_LIST_FILE_BYTES} bytes" in str(caught.value)
