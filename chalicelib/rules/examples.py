"""`examples:` on a rule in rules.yaml: events the rule must fire on, or must not.

    examples:
      - fires: true
        event: {account_id: a, amount: 600, ts: "2026-11-01T12:05:00Z"}
        history:                       # optional: events that arrived before, in this order
          - {account_id: a, amount: 500, ts: "2026-11-01T12:01:00Z"}
      - file: velocity-examples.yaml   # a YAML list of such examples, next to the rules file

Rules whose kind judges the absence of history (`new_key_fan_out`) wait until the time-series
store has observed their whole window: in an example the observation starts with its first event
(the first of `history`, else `event`), or earlier with `observed_since: "2026-10-01T00:00:00Z"`
(an unrelated event at that time is delivered first, as if the store had been watching since then).

An example may also state `decision: approve | review | decline`: what the decision route answers
for the event under the file's `decisions:` policy (over every rule's hits on it, not only this
rule's). Events are written as in the native record format; `event_id` may be left out (one is made up)
and so may `account_id` (`acct-1`). Examples are checked by `python -m chalicelib rules test`
through the real pipeline; they never run in production and are not part of the ruleset version
(adding an example does not change which rules run, so it must not look like a rule change).
Only the pydantic models live here: this module is imported by `base.py` and stays light.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.rules.policy import Outcome

MAX_EXAMPLES_PER_RULE = 50
MAX_HISTORY_EVENTS = 500
EXAMPLE_FILE_PATTERN = r"^[A-Za-z0-9_.-]+\.ya?ml$"


class RuleExample(BaseModel):
    """One example: `event` judged after `history` arrived; the rule must (not) fire on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fires: bool
    event: dict[str, Any]
    history: tuple[dict[str, Any], ...] = Field(default=(), max_length=MAX_HISTORY_EVENTS)
    name: str | None = Field(default=None, max_length=200)
    decision: Outcome | None = None
    #: when the store's observation started (an ISO-8601 time); default: the example's first event
    observed_since: str | None = Field(default=None, max_length=64)

    @field_validator("event")
    @classmethod
    def _event_has_ts(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "ts" not in value:
            raise ValueError("an example event needs a 'ts'")
        return value


class ExampleFile(BaseModel):
    """`file: NAME.yaml`: more examples in a YAML list next to the rules file (a plain name, no path)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str = Field(pattern=EXAMPLE_FILE_PATTERN)


Example = RuleExample | ExampleFile
Examples = tuple[Example, ...]


__all__ = [
    "MAX_EXAMPLES_PER_RULE",
    "MAX_HISTORY_EVENTS",
    "Example",
    "ExampleFile",
    "Examples",
    "RuleExample",
]
