"""The shape of the Lambda response for a Kinesis batch, and how a redelivery point is read from it.

Lambda's event source mapping (with `ReportBatchItemFailures`) redelivers a batch from the first
`batchItemFailures[].itemIdentifier` - a record's sequence number - and treats the records before
it as done. The pipeline writes this response; the local redelivery loops (`stream_through`, the
Kinesis poller) read it back the way Lambda does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

#: How often the local loops (`stream_through`, the rule-author toolkit's scratch runs) redeliver
#: a failing batch before giving up.
MAX_REDELIVERIES = 5


class ItemFailure(TypedDict):
    itemIdentifier: str  # the sequence number to redeliver from


class BatchResponse(TypedDict):
    records: int
    accepted: int
    duplicates: int
    rejudged: int
    poison: int
    hits: dict[str, int]
    shadow_hits: dict[str, int]
    ruleset_version: str
    rule_errors: dict[str, int]
    error: str | None
    batchItemFailures: list[ItemFailure]


def redelivery_point(response: Mapping[str, Any]) -> str | None:
    """The sequence number Lambda would redeliver from, or None when the whole batch is done."""
    failures = response.get("batchItemFailures") or []
    return str(failures[0]["itemIdentifier"]) if failures else None
