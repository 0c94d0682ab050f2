"""rules.yaml -> `RuleSet`: one validation pass, precise errors, never half-applied.

Errors name the file, the line, the rule id and the field. YAML mapping keys that repeat are
errors too (PyYAML would silently keep the last one).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from chalicelib.rules.base import GraphRule, Rule, RuleConfig, RuleContext
from chalicelib.rules.exceptions import RuleIssue, RuleKindError, RulesFileError
from chalicelib.rules.registry import import_plugin, kinds, rule_class_for, rules_adapter

MAX_LIST_ENTRIES = 1_000_000


@dataclass(frozen=True)
class RuleSet:
    """A validated, versioned set of rules, ready to evaluate. Only enabled rules are in `rules`."""

    version: str
    rules: tuple[Rule[Any], ...]
    configs: tuple[RuleConfig, ...]
    lists: Mapping[str, frozenset[str]]
    source: str

    def rule(self, rule_id: str) -> Rule[Any]:
        return next(r for r in self.rules if r.id == rule_id)

    @property
    def micro_rules(self) -> tuple[Rule[Any], ...]:
        return tuple(r for r in self.rules if not isinstance(r, GraphRule))

    def graph_rules(self, phase: int) -> tuple[GraphRule[Any], ...]:
        return tuple(r for r in self.rules if isinstance(r, GraphRule) and r.phase == phase)


class ListSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    values: tuple[str, ...] | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ListSource:
        if (self.values is None) == (self.file is None):
            raise ValueError("a list needs exactly one of 'values' or 'file'")
        return self


class RulesDocument(BaseModel):
    """The top level of rules.yaml; `rules` are validated afterwards, once plugins are imported."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1]
    plugins: tuple[str, ...] = ()
    lists: dict[str, ListSource] = Field(default_factory=dict)
    rules: list[Any]


# --------------------------------------------------------------------------- YAML with lines


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, name: str) -> tuple[Any, yaml.Node | None]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise RulesFileError([RuleIssue(name, line, None, None, f"not valid YAML: {problem}")]) from None
    finally:
        loader.dispose()
    return data, node


def _line_of(node: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """The line (1-based) of the deepest YAML node along `path`; unknown path parts are skipped."""
    if node is None:
        return None
    for part in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is not None:
            node = child
    return node.start_mark.line + 1


# --------------------------------------------------------------------------- loading


def load_rules_file(path: str | Path) -> RuleSet:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesFileError([RuleIssue(str(path), None, None, None, f"cannot read: {exc}")]) from None
    return load_rules_text(text, name=str(path), base_dir=path.parent)


def load_rules_text(text: str, *, name: str = "<rules>", base_dir: Path | None = None) -> RuleSet:
    data, root = _parse_yaml(text, name)

    def issue(loc: tuple[Any, ...], message: str, field: str | None = None) -> RuleIssue:
        rule_id = None
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            raw = data["rules"][loc[1]] if loc[1] < len(data["rules"]) else None
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            rule_id = str(rule_id) if rule_id is not None else f"rules[{loc[1]}]"
        return RuleIssue(name, _line_of(root, loc), rule_id, field, message)

    try:
        document = RulesDocument.model_validate(data)
    except ValidationError as exc:
        raise RulesFileError([issue(tuple(e["loc"]), _message(e), _field(e["loc"])) for e in exc.errors()]) from None

    problems: list[RuleIssue] = []
    for index, plugin in enumerate(document.plugins):
        try:
            import_plugin(plugin)
        except RuleKindError as exc:
            problems.append(issue(("plugins", index), str(exc)))
    if problems:
        raise RulesFileError(problems)

    try:
        configs: list[RuleConfig] = rules_adapter().validate_python(document.rules)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ("rules", *err["loc"])
            problems.append(issue(loc, _message(err), _field(err["loc"][2:] or None)))
        raise RulesFileError(sorted(problems, key=lambda i: i.line or 0)) from None

    lists = _read_lists(document.lists, base_dir, name, issue, problems)
    seen: dict[str, int] = {}
    for index, config in enumerate(configs):
        if config.id in seen:
            problems.append(issue(("rules", index, "id"),
                                  f"duplicate rule id (first used by rules[{seen[config.id]}])", "id"))
        seen.setdefault(config.id, index)
        wanted = getattr(config, "list", None)
        if isinstance(wanted, str) and wanted not in document.lists:
            problems.append(issue(("rules", index, "list"),
                                  f"unknown list {wanted!r}: declare it under 'lists:'", "list"))
    kinds_by_id = {c.id: getattr(c, "kind", "") for c in configs}
    for index, config in enumerate(configs):
        referenced = getattr(config, "rules", None) or ()
        for rule_id in referenced:
            if rule_id not in kinds_by_id:
                problems.append(issue(("rules", index, "rules"), f"refers to unknown rule {rule_id!r}", "rules"))
            elif rule_id == config.id:
                problems.append(issue(("rules", index, "rules"), "a rule cannot refer to itself", "rules"))
            elif kinds_by_id[config.id] == "composite" and kinds_by_id[rule_id] == "composite":
                problems.append(issue(("rules", index, "rules"),
                                      f"composite rules cannot combine other composite rules ({rule_id!r})", "rules"))
    if problems:
        raise RulesFileError(problems)

    context = RuleContext(lists=lists)
    rules = tuple(rule_class_for(c)(c, context) for c in configs if c.enabled)
    return RuleSet(ruleset_version(document, configs, lists), rules, tuple(configs), lists, name)


def ruleset_version(document: RulesDocument, configs: list[RuleConfig],
                    lists: Mapping[str, frozenset[str]]) -> str:
    """A short hash of the canonical content: what the rules mean, not how the YAML is laid out."""
    canonical = {
        "plugins": list(document.plugins),
        "rules": [c.model_dump(mode="json", by_alias=True) for c in configs],
        "lists": {k: sorted(v) for k, v in sorted(lists.items())},
    }
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
        path = Path(spec.file)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(issue(("lists", list_name, "file"), f"cannot read list file: {exc}", "file"))
            continue
        values = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        if len(values) > MAX_LIST_ENTRIES:
            problems.append(issue(("lists", list_name), f"list has more than {MAX_LIST_ENTRIES} entries"))
            continue
        lists[list_name] = frozenset(values)
    return lists


def _field(loc: Any) -> str | None:
    if not loc:
        return None
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return ".".join(parts) or None


def _message(err: ErrorDetails) -> str:
    if err["type"] == "union_tag_invalid":
        known = ", ".join(sorted(kinds()))
        return f"unknown kind {err['input'].get('kind')!r}: known kinds are {known}"
    if err["type"] == "union_tag_not_found":
        return "missing 'kind'"
    if err["type"] == "extra_forbidden":
        return _unknown_key(err)
    return err["msg"].removeprefix("Value error, ")


def _unknown_key(err: ErrorDetails) -> str:
    loc = err["loc"]
    kind = loc[1] if len(loc) > 2 and isinstance(loc[1], str) else None
    allowed = list(kinds()[kind][0].model_fields) if kind in kinds() else []
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
    return f"unknown key ({hint})"
