"""The registry of rule kinds: `kind` name -> (config model, rule class).

Built-in kinds register on import of `chalicelib.rules`. Third-party kinds register with the same
decorator from their own module, which is imported through the `chalicelib.rule_kinds` entry-point
group or a `plugins:` list of import paths in rules.yaml - the engine is never edited.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import Annotated, Any, TypeVar, Union

from pydantic import Field, TypeAdapter

from chalicelib.rules.base import Rule, RuleConfig, View
from chalicelib.rules.exceptions import RuleKindError

ENTRY_POINT_GROUP = "chalicelib.rule_kinds"
log = logging.getLogger(__name__)

_KINDS: dict[str, tuple[type[RuleConfig], type[Rule[Any]]]] = {}
_entry_points_loaded = False

R = TypeVar("R", bound=type[Rule[Any]])


def kind_of(config_model: type[RuleConfig]) -> str:
    field = config_model.model_fields.get("kind")
    if field is None or not isinstance(field.default, str):
        raise RuleKindError(
            f"{config_model.__name__} needs a field `kind: Literal['<name>'] = '<name>'`"
        )
    return field.default


def register_rule_kind(rule_class: R) -> R:
    """Class decorator: register a `Rule` subclass whose `config_model` names its kind."""
    config_model = getattr(rule_class, "config_model", None)  # declared on Rule, set by each kind
    if not (isinstance(config_model, type) and issubclass(config_model, RuleConfig)):
        raise RuleKindError(f"{rule_class.__name__}.config_model must be a RuleConfig subclass")
    kind = kind_of(config_model)
    existing = _KINDS.get(kind)
    if existing is not None and existing[1] is not rule_class:
        raise RuleKindError(
            f"rule kind {kind!r} is already registered by {existing[1].__module__}."
            f"{existing[1].__name__}"
        )
    _KINDS[kind] = (config_model, rule_class)
    return rule_class


def load_entry_point_kinds() -> None:
    """Import every module advertised under the `chalicelib.rule_kinds` entry-point group (once)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken plugin must not take the built-in kinds down
            log.error("rule kind plugin %s (%s) failed to load: %s", ep.name, ep.value, exc)


def import_plugin(path: str) -> None:
    """Import a `plugins:` entry of rules.yaml; its module registers its kinds on import."""
    try:
        importlib.import_module(path)
    except (Exception, SystemExit) as exc:  # a module calling sys.exit() must not end the engine
        raise RuleKindError(f"plugin {path!r} could not be imported: {type(exc).__name__}: {exc}") from exc


def kinds() -> dict[str, tuple[type[RuleConfig], type[Rule[Any]]]]:
    load_entry_point_kinds()
    return dict(_KINDS)


def view_of(kind: str) -> View:
    """The view a kind's hits count as; a kind not registered here (a plugin this process did not
    load) counts as micro."""
    load_entry_point_kinds()
    entry = _KINDS.get(kind)
    return entry[1].view if entry is not None else "micro"


def flags_account(kind: str) -> bool:
    """Whether a hit of `kind` makes its account flagged for `near_flagged` (unknown kinds do)."""
    load_entry_point_kinds()
    entry = _KINDS.get(kind)
    return entry[1].flags_account if entry is not None else True


def rule_class_for(config: RuleConfig) -> type[Rule[Any]]:
    return _KINDS[kind_of(type(config))][1]


def rule_adapter() -> TypeAdapter[Any]:
    """A TypeAdapter for one rule: the discriminated union of every registered config."""
    models = tuple(config for config, _ in kinds().values())
    union: Any = models[0] if len(models) == 1 else Union[models]  # noqa: UP007
    return TypeAdapter(Annotated[union, Field(discriminator="kind")])
