"""rules.yaml -> `RuleSet`: one validation pass, precise errors, never half-applied.

Errors name the file, the line, the rule id and the field, and one load reports every problem
it can find. YAML mapping keys that repeat are errors too (PyYAML would silently keep the last
one). Whatever the text, loading takes bounded time and memory (`limits.py`) and raises nothing
but `RulesFileError`.

Size: one validation pass (YAML safety, schema, references, plugins, located errors) is one
job whose steps share the location bookkeeping.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from chalicelib.rules import limits
from chalicelib.rules.base import GraphRule, Rule, RuleConfig, RuleContext
from chalicelib.rules.exceptions import RuleIssue, RuleKindError, RulesFileError
from chalicelib.rules.policy import DEFAULT_POLICY, DecisionPolicy
from chalicelib.rules.registry import import_plugin, kinds, rule_adapter, rule_class_for, view_of
from chalicelib.settings import rules_plugins_allowed

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


PluginName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", max_length=200)]


class ListSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    values: tuple[str, ...] | None = Field(default=None, max_length=limits.MAX_LIST_ENTRIES)
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
    plugins: tuple[PluginName, ...] = Field(default=(), max_length=limits.MAX_PLUGINS)
    lists: dict[str, ListSource] = Field(default_factory=dict, max_length=limits.MAX_LISTS)
    rules: list[Any] = Field(max_length=limits.MAX_RULES)
    decisions: DecisionPolicy = DEFAULT_POLICY


# --------------------------------------------------------------------------- YAML with lines


class _TooMuch(yaml.composer.ComposerError):
    """A YAML document refused for its size or shape before anything walks it."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(None, None, problem, mark)


class _Loader(yaml.SafeLoader):
    """Safe YAML (no python tags) that refuses repeated keys and bounds what aliases expand to.

    PyYAML shares an aliased node rather than copying it, so parsing a "billion laughs" is cheap;
    what is not is everything after (validation, hashing) walking the expanded tree. So the
    composer counts each node as often as aliases make it appear and stops past the limits."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._chars = 0
        self._depth = 0
        self._expanded: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, chars) once complete

    def _grow(self, nodes: int, chars: int, mark: Any) -> None:
        self._nodes += nodes
        self._chars += chars
        if self._nodes > limits.MAX_YAML_NODES:
            raise _TooMuch(f"more than {limits.MAX_YAML_NODES} values once aliases are expanded", mark)
        if self._chars > limits.MAX_YAML_SCALAR_CHARS:
            raise _TooMuch(f"more than {limits.MAX_YAML_SCALAR_CHARS} characters of text once aliases "
                           "are expanded", mark)

    def compose_node(self, parent: Any, index: Any) -> Any:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            size = self._expanded.get(id(node))
            if size is None:  # the anchored collection is still being read
                raise _TooMuch(f"alias *{event.anchor} refers to a collection that contains it",
                               event.start_mark)
            self._grow(*size, event.start_mark)
            return node
        if self._depth >= limits.MAX_YAML_DEPTH:
            raise _TooMuch(f"values nested more than {limits.MAX_YAML_DEPTH} levels deep", event.start_mark)
        nodes, chars = self._nodes, self._chars
        self._grow(1, len(event.value) if isinstance(event, yaml.ScalarEvent) else 0, event.start_mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._expanded[id(node)] = (self._nodes - nodes, self._chars - chars)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as exc:  # e.g. a 5000-digit int, 2024-13-45
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read value {str(node.value)[:40]!r}: {exc}", node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, "found a list or map as a key",
                    key_node.start_mark) from None
            if repeated:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, name: str) -> tuple[Any, yaml.Node | None]:
    if len(text) > limits.MAX_FILE_BYTES:
        raise RulesFileError([RuleIssue(name, None, None, None,
                                        f"file is larger than {limits.MAX_FILE_BYTES} bytes")])
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        message = f"refused: {problem}" if isinstance(exc, _TooMuch) else f"not valid YAML: {problem}"
        raise RulesFileError([RuleIssue(name, line, None, None, message)]) from None
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


def load_rules_file(path: str | Path, *, plugins_allowed: Collection[str] | None = None) -> RuleSet:
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
                    plugins_allowed: Collection[str] | None = None) -> RuleSet:
    """Validate rules.yaml text. `plugins_allowed` defaults to the RULES_PLUGINS_ALLOWED setting.

    Raises RulesFileError with every problem found; nothing else escapes, so a caller can treat
    any failure as a rejected file."""
    allowed = rules_plugins_allowed() if plugins_allowed is None else tuple(plugins_allowed)
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
        path = Path(spec.file)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            with path.open("rb") as handle:
                raw = handle.read(limits.MAX_LIST_FILE_BYTES + 1)
            if len(raw) > limits.MAX_LIST_FILE_BYTES:
                problems.append(issue(("lists", list_name, "file"),
                                      f"list file is larger than {limits.MAX_LIST_FILE_BYTES} bytes", "file"))
                continue
            lines = raw.decode("utf-8").splitlines()
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


def _message(err: ErrorDetails, root: type[BaseModel] | None) -> str:
    """A validation error in words; `root` is the model validated (None: a rule, by its kind)."""
    if err["type"] == "union_tag_invalid":
        known = ", ".join(sorted(kinds()))
        return f"unknown kind {str(err['input'].get('kind'))[:64]!r}: known kinds are {known}"
    if err["type"] == "union_tag_not_found":
        return "missing 'kind'"
    if err["type"] == "extra_forbidden":
        return _unknown_key(err["loc"], root)
    message = err["msg"].removeprefix("Value error, ")
    if root is None and err["type"] in _RANGE_ERRORS:
        message += " (the valid range of each field: docs/RULE_KINDS.md, Bounds)"
    return message


_RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"})


def _unknown_key(loc: tuple[int | str, ...], root: type[BaseModel] | None) -> str:
    """Name the keys allowed where the unknown one stands (or the one it is a typo of)."""
    path = loc[:-1]
    if root is None:  # a rule: the path starts with its kind
        root = kinds()[str(path[0])][0] if path and path[0] in kinds() else None
        path = path[1:]
    model = _model_at(root, path) if root is not None else None
    allowed = [f.alias or n for n, f in model.model_fields.items()] if model is not None else []
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
    return f"unknown key ({hint})"


def _model_at(model: type[BaseModel], path: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model of the mapping at `path` inside `model` (list indexes and dict keys skipped)."""
    current: type[BaseModel] | None = model
    in_dict = False
    for part in path:
        if isinstance(part, int) or current is None:
            continue
        if in_dict:  # the key of a dict of models (lists.NAME)
            in_dict = False
            continue
        field = current.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        in_dict = get_origin(annotation) is dict
        current = _model_in(annotation)
    return current


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
