"""Hardened YAML for rules files: safe tags only, repeated keys refused, the size of what aliases
expand to bounded before anything walks the tree (`limits.py`), and the line of any value."""

from __future__ import annotations

from typing import Any

import yaml

from chalicelib.rules import limits
from chalicelib.rules.exceptions import RuleIssue, RulesFileError


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
    try:
        loader = _Loader(text)  # refuses a control character (NUL, BEL...) before any parsing
    except yaml.reader.ReaderError as exc:
        at = exc.position
        raise RulesFileError([RuleIssue(name, text.count("\n", 0, at) + 1, None, None,
                                        f"not valid YAML: control character #x{exc.character:02x} at "
                                        f"column {at - text.rfind(chr(10), 0, at)}; "
                                        "a rules file is printable text")]) from None
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
