"""Validation errors in words: pydantic's error details of a rules file rendered as one line each,
naming the allowed keys (or the one a typo was meant to be) and the known kinds."""

from __future__ import annotations

import difflib
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from chalicelib.rules.registry import kinds


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
