"""rules.yaml -> `RuleSet`: one validation pass, precise errors, never half-applied.

Errors name the file, the line, the rule id and the field, and one load reports every problem
it can find. YAML mapping keys that repeat are errors too (PyYAML would silently keep the last
one). Whatever the text, loading takes bounded time and memory (`limits.py`) and raises nothing
but `RulesFileError`.

Parts: hardened YAML with lines is `yaml_lines.py`, validation errors in words `messages.py`;
this module is the pass itself (schema, references, plugins, lists, the version).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chalicelib.rules import limits
from chalicelib.rules.base import GraphRule, Rule, RuleConfig, RuleContext
from chalicelib.rules.exceptions import RuleIssue, RuleKindError, RulesFileError
from chalicelib.rules.messages import _field, _message
from chalicelib.rules.policy import DEFAULT_POLICY, DecisionPolicy
from chalicelib.rules.registry import import_plugin, rule_adapter, rule_class_for, view_of
from chalicelib.rules.yaml_lines import _line_of, _parse_yaml

log = logging.getLogger(__name__)
MAX_LIST_ENTRIES = limits.MAX_LIST_ENTRIES


@dataclass(frozen=True)
class RuleSet:
    """A validated, versioned set of rules, ready to evaluate. Only enabled rules are in `rules`."""

    version: str
    rules: tuple[Rule[Any], ...]
    configs: tuple[RuleConfig, ...]
    lists: Mapping[str, frozenset[str]]
    source: str
    #: ids of rules that raised while judging (see engine.quarantine); they stay off while this
    #: version is in force in this process
    quarantined: set[str] = dataclasses.field(default_factory=set, compare=False, repr=False)
    #: `decisions:` of the file: how hits become approve / review / decline (the decision route)
    policy: DecisionPolicy = DEFAULT_POLICY

    def rule(self, rule_id: str) -> Rule[Any]:
        return next(r for r in self.rules if r.id == rule_id)

    @property
    def micro_rules(self) -> tuple[Rule[Any], ...]:
        return tuple(r for r in self.rules if not isinstance(r, GraphRule))

    def graph_rules(self, phase: int) -> tuple[GraphRule[Any], ...]:
        return tuple(r for r in self.rules if isinstance(r, GraphRule) and r.phase == phase)

    @property
    def needs_full_history(self) -> bool:
        """Whether a windowed rule is judged only once the store's observation covers its window
        (`Rule.needs_full_history`): the pipeline then reads the store's `observed_since`."""
        return any(r.needs_full_history and r.window is not None for r in self.micro_rules)


PluginName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", max_length=200)]


def check_file_name(name: str, what: str) -> str:
    """A file a rules file names is a plain name in the rules file's own directory."""
    if not re.fullmatch(limits.FILE_NAME_PATTERN, name):
        raise ValueError(f"{what} {name[:80]!r} must be a plain file name next to the rules file (letters, digits, "
                         "'_', '-', '.'; no directories, no leading dot), e.g. stolen-cards.txt")
    return name


def read_beside(base_dir: Path, name: str, what: str, max_bytes: int) -> bytes:
    """The bytes of file `name` in `base_dir` (the rules file's directory), read only if it is a
    plain name of a regular file there (not a link out of it, a device or a pipe) of at most
    `max_bytes`; ValueError saying why not."""
    check_file_name(name, what)
    try:
        path = (base_dir / name).resolve(strict=True)
        if path.parent != base_dir.resolve():
            raise ValueError(f"{what} {name} is a link out of the rules file's directory")
        if not path.is_file():
            raise ValueError(f"{what} {name} is not a regular file")
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {what}: {exc}") from None
    if len(data) > max_bytes:
        raise ValueError(f"{what} is larger than {max_bytes} bytes")
    return data


def parse_yaml(text: str, name: str) -> Any:
    """YAML under the rules file's bounds (size, depth, alias expansion, no repeated keys);
    RulesFileError saying where it is refused."""
    return _parse_yaml(text, name)[0]


class ListSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    values: tuple[str, ...] | None = Field(default=None, max_length=limits.MAX_LIST_ENTRIES)
    file: str | None = None

    @field_validator("file")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        if name is not None:
            check_file_name(name, "list file")
        return name

    @model_validator(mode="after")
    def _one_source(self) -> ListSource:
        if (self.values is None) == (self.file is None):
            raise ValueError("a list needs exactly one of 'values' or 'file'")
        return self


class RulesDocument(BaseModel):
    """The top level of rules.yaml; `rules` are validated afterwards, once plugins are imported."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1]
    plugins: tuple[PluginName, ...] = Field(default=(), max_length=limits.MAX_PLUGINS)
    lists: dict[str, ListSource] = Field(default_factory=dict, max_length=limits.MAX_LISTS)
    rules: list[Any] = Field(max_length=limits.MAX_RULES)
    decisions: DecisionPolicy = DEFAULT_POLICY


# --------------------------------------------------------------------------- loading


def load_rules_file(path: str | Path, *, plugins_allowed: Collection[str] = ()) -> RuleSet:
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(limits.MAX_FILE_BYTES + 1)
        if len(raw) > limits.MAX_FILE_BYTES:
            raise RulesFileError([RuleIssue(str(path), None, None, None,
                                            f"file is larger than {limits.MAX_FILE_BYTES} bytes")])
        text = raw.decode("utf-8")
    except OSError as exc:
        raise RulesFileError([RuleIssue(str(path), None, None, None, f"cannot read: {exc}")]) from None
    except UnicodeDecodeError as exc:
        raise RulesFileError([RuleIssue(str(path), None, None, None, f"not UTF-8 text: {exc}")]) from None
    return load_rules_text(text, name=str(path), base_dir=path.parent, plugins_allowed=plugins_allowed)


def load_rules_text(text: str, *, name: str = "<rules>", base_dir: Path | None = None,
                    plugins_allowed: Collection[str] = ()) -> RuleSet:
    """Validate rules.yaml text. `plugins_allowed`: the modules `plugins:` may import (none by
    default; the wiring passes the RULES_PLUGINS_ALLOWED setting, the tools too).

    Raises RulesFileError with every problem found; nothing else escapes, so a caller can treat
    any failure as a rejected file."""
    allowed = tuple(plugins_allowed)
    try:
        return _load(text, name, base_dir, allowed)
    except RulesFileError:
        raise
    except Exception as exc:  # a bug here or in a plugin: still a rejected file, never a crash
        log.exception("unexpected error while loading rules %s", name)
        raise RulesFileError([RuleIssue(name, None, None, None,
                                        f"could not be loaded: {type(exc).__name__}: {exc}")]) from exc


def _load(text: str, name: str, base_dir: Path | None, plugins_allowed: tuple[str, ...]) -> RuleSet:
    data, root = _parse_yaml(text, name)
    raw_rules = data.get("rules") if isinstance(data, dict) else None
    raw_rules = raw_rules if isinstance(raw_rules, list) else []

    def issue(loc: tuple[Any, ...], message: str, field: str | None = None) -> RuleIssue:
        rule_id = None
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            raw = raw_rules[loc[1]] if loc[1] < len(raw_rules) else None
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            rule_id = str(rule_id)[:64] if rule_id is not None else f"rules[{loc[1]}]"
        return RuleIssue(name, _line_of(root, loc), rule_id, field, message)

    # Every round runs even when an earlier one failed, so one check shows every problem.
    problems: list[RuleIssue] = []
    document, broken = _validate_document(data, issue, problems)
    if document is None:
        raise RulesFileError(problems)

    for index, plugin in enumerate(document.plugins):
        if not _plugin_allowed(plugin, plugins_allowed):
            shown = ", ".join(plugins_allowed) or "empty: no plugin may be imported"
            problems.append(issue(("plugins", index), f"plugin {plugin!r} is not allowed: add it to the "
                                  f"RULES_PLUGINS_ALLOWED setting of the engine (now {shown})"))
            continue
        try:
            import_plugin(plugin)
        except RuleKindError as exc:
            problems.append(issue(("plugins", index), str(exc)))

    adapter = rule_adapter()
    configs: list[tuple[int, RuleConfig]] = []
    for index, raw in enumerate(document.rules):
        try:
            configs.append((index, adapter.validate_python(raw)))
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(issue(("rules", index, *err["loc"]), _message(err, None), _field(err["loc"][1:])))
        except Exception as exc:  # a plugin's validator raising something pydantic passes through
            problems.append(issue(("rules", index), f"rule could not be validated: {type(exc).__name__}: {exc}"))

    lists = _read_lists(document.lists, base_dir, name, issue, problems)
    _check_references(raw_rules, None if "lists" in broken else document.lists, issue, problems)
    _check_policy_rules(data.get("decisions"), raw_rules, issue, problems)
    context = RuleContext(lists=lists)
    rules: list[Rule[Any]] = []
    for index, config in configs:
        if not config.enabled:
            continue
        try:
            rules.append(rule_class_for(config)(config, context))
        except Exception as exc:  # a plugin's constructor
            problems.append(issue(("rules", index), f"rule could not be built: {type(exc).__name__}: {exc}"))
    if problems:
        raise RulesFileError(sorted(problems, key=lambda i: i.line or 0))
    valid = [config for _, config in configs]
    return RuleSet(ruleset_version(document, valid, lists), tuple(rules), tuple(valid), lists, name,
                   policy=document.decisions)


def _validate_document(data: Any, issue: Any, problems: list[RuleIssue]) -> tuple[RulesDocument | None, set[str]]:
    """The top level, reported in full; a broken top-level field is replaced by its default so
    the rest of the file is still checked. None when there is nothing to check further."""
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        problems.append(issue((), f"the file is {what}: a rules file starts with 'version: 1' and has a "
                              "'rules:' list (see the rules.yaml reference in README.md)"))
        return None, set()
    try:
        return RulesDocument.model_validate(data), set()
    except ValidationError as exc:
        errors = exc.errors()
    for err in errors:
        problems.append(issue(tuple(err["loc"]), _message(err, RulesDocument), _field(err["loc"])))
    broken = {str(err["loc"][0]) for err in errors if err["loc"]}
    known = RulesDocument.model_fields
    kept = {k: v for k, v in data.items() if k in known and k not in broken}
    kept.setdefault("version", 1)
    kept.setdefault("rules", [])
    return RulesDocument.model_validate(kept), broken


def _check_references(raw_rules: list[Any], declared_lists: Mapping[str, ListSource] | None,
                      issue: Any, problems: list[RuleIssue]) -> None:
    """Rule ids unique; the lists and rules a rule names exist. Read from every rule as written,
    valid or not, so a rule with an error of its own still has its names checked in the same run."""
    kinds_by_id: dict[str, str] = {}
    first_index: dict[str, int] = {}
    for index, raw in enumerate(raw_rules):
        rule_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(rule_id, str):
            continue
        if rule_id in first_index:
            problems.append(issue(("rules", index, "id"),
                                  f"duplicate rule id (first used by rules[{first_index[rule_id]}])", "id"))
            continue
        first_index[rule_id] = index
        kinds_by_id[rule_id] = str(raw.get("kind", ""))
    for index, raw in enumerate(raw_rules):
        if not isinstance(raw, dict):
            continue
        wanted = raw.get("list")
        if isinstance(wanted, str) and declared_lists is not None and wanted not in declared_lists:
            problems.append(issue(("rules", index, "list"),
                                  f"unknown list {wanted!r}: declare it under 'lists:'", "list"))
        referenced = raw.get("rules")
        if not isinstance(referenced, dict | list):
            continue
        for rule_id in referenced:
            if not isinstance(rule_id, str):
                continue
            if rule_id not in kinds_by_id:
                problems.append(issue(("rules", index, "rules"), f"refers to unknown rule {rule_id!r}", "rules"))
            elif rule_id == raw.get("id"):
                problems.append(issue(("rules", index, "rules"), "a rule cannot refer to itself", "rules"))
            elif view_of(str(raw.get("kind", ""))) == "composite" and view_of(kinds_by_id[rule_id]) == "composite":
                problems.append(issue(("rules", index, "rules"),
                                      f"composite rules cannot combine other composite rules ({rule_id!r})", "rules"))


def _check_policy_rules(raw_policy: Any, raw_rules: list[Any], issue: Any, problems: list[RuleIssue]) -> None:
    """Every rule the decision policy names is a rule of the file (read as written, so a policy
    with an error of its own still has its names checked in the same run)."""
    named = raw_policy.get("rules") if isinstance(raw_policy, dict) else None
    if not isinstance(named, dict):
        return
    known = {raw.get("id") for raw in raw_rules if isinstance(raw, dict)}
    for rule_id in list(named)[:limits.MAX_RULES]:
        if isinstance(rule_id, str) and rule_id not in known:
            close = difflib.get_close_matches(rule_id, [str(k) for k in known if k is not None], n=1)
            hint = f": did you mean {close[0]!r}?" if close else ": name a rule of this file"
            problems.append(issue(("decisions", "rules", rule_id), f"unknown rule {rule_id[:64]!r}{hint}",
                                  "decisions.rules"))


def _plugin_allowed(module: str, allowed: Collection[str]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in allowed)


def ruleset_version(document: RulesDocument, configs: list[RuleConfig],
                    lists: Mapping[str, frozenset[str]]) -> str:
    """A short hash of the canonical content: what the rules mean, not how the YAML is laid out."""
    canonical: dict[str, Any] = {
        "plugins": list(document.plugins),
        "rules": [c.model_dump(mode="json", by_alias=True) for c in configs],
        "lists": {k: sorted(v) for k, v in sorted(lists.items())},
    }
    if not document.decisions.is_default():  # a file without `decisions:` keeps its old version
        canonical["decisions"] = document.decisions.canonical()
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _read_lists(specs: Mapping[str, ListSource], base_dir: Path | None, name: str,
                issue: Any, problems: list[RuleIssue]) -> dict[str, frozenset[str]]:
    lists: dict[str, frozenset[str]] = {}
    for list_name, spec in specs.items():
        if spec.values is not None:
            lists[list_name] = frozenset(spec.values)
            continue
        assert spec.file is not None
        if base_dir is None:
            problems.append(issue(("lists", list_name, "file"), "a list file is read next to a rules file on disk, "
                                  "and these rules come from elsewhere: give the list inline as values:", "file"))
            continue
        try:
            lines = read_beside(base_dir, spec.file, "list file", limits.MAX_LIST_FILE_BYTES).decode().splitlines()
        except UnicodeDecodeError as exc:
            problems.append(issue(("lists", list_name, "file"), f"cannot read list file: {exc}", "file"))
            continue
        except ValueError as exc:
            problems.append(issue(("lists", list_name, "file"), str(exc), "file"))
            continue
        values = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        if len(values) > MAX_LIST_ENTRIES:
            problems.append(issue(("lists", list_name), f"list has more than {MAX_LIST_ENTRIES} entries"))
            continue
        lists[list_name] = frozenset(values)
    return lists
