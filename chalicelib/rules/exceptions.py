"""Errors of the rules package; all share `RulesError`."""

from __future__ import annotations

from dataclasses import dataclass


class RulesError(Exception):
    """Base of every rules error."""


class RuleKindError(RulesError):
    """A rule kind could not be registered or a plugin could not be imported."""


@dataclass(frozen=True)
class RuleIssue:
    """One problem in a rules file, located as precisely as the file allows."""

    file: str
    line: int | None
    rule_id: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [where]
        if self.rule_id:
            parts.append(f"rule {self.rule_id!r}")
        if self.field:
            parts.append(f"field {self.field!r}")
        return " ".join(parts) + f": {self.message}"


class RulesFileError(RulesError):
    """A rules file is invalid; it carries every issue found, none of it is applied."""

    def __init__(self, issues: list[RuleIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))
