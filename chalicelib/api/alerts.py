"""The alert routes' parameters and answers: the inbox (`GET /api/alerts`), one alert with its
hits, audit trail and notification (`GET /api/alerts/{id}`), the two transitions (`POST .../assign`,
`POST .../verdict`) and per-rule precision on decided alerts (`GET /api/alert-precision`).
Query strings and bodies are validated before the store is read; the route code is in app.py."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from chalicelib.alerts import STATUSES, VERDICTS, AlertFilter, precision_by_rule
from chalicelib.api.params import Key, ParameterError, RuleId, _Query, decode_cursor, encode_cursor, parse
from chalicelib.inbox import AlertInbox

AlertIdText = Field(pattern=r"^[0-9a-f]{32}$")
MAX_BODY_BYTES = 10_000


class AlertsQuery(_Query):
    status: Literal[STATUSES] | None = None  # type: ignore[valid-type]
    assignee: Key | None = None
    rule: RuleId | None = None
    account: Key | None = None
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=500)


class AssignBody(_Query):
    assignee: str = Field(min_length=1, max_length=200)


class VerdictBody(_Query):
    verdict: Literal[VERDICTS]  # type: ignore[valid-type]
    note: str | None = Field(default=None, max_length=2000)


def check_alert_id(alert_id: str) -> str:
    if len(alert_id) != 32 or any(c not in "0123456789abcdef" for c in alert_id):
        raise ParameterError("alert id: give the 32 hex digits an alert listing shows")
    return alert_id


def parse_body(model: type[Any], raw: bytes | str | None) -> Any:
    """A JSON object body validated by `model` (400 with every problem otherwise)."""
    if raw is None or raw in (b"", ""):
        raise ParameterError("body: send a JSON object, e.g. " + ('{"assignee": "ana"}' if model is AssignBody
                                                                   else '{"verdict": "fraud", "note": "..."}'))
    if len(raw) > MAX_BODY_BYTES:
        raise ParameterError(f"body: at most {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ParameterError("body: not JSON; send a JSON object") from None
    if not isinstance(data, dict):
        raise ParameterError("body: send a JSON object")
    return parse(model, data)


def list_alerts(inbox: AlertInbox, q: AlertsQuery) -> dict[str, Any]:
    after = None
    if q.cursor:
        rank, ts, alert_id = decode_cursor(q.cursor, list, 3)
        if not rank.isdigit():
            raise ParameterError("cursor: not a cursor of this route; pass next_cursor from the previous page")
        after = (int(rank), ts, alert_id)
    found = inbox.store.list_alerts(AlertFilter(status=q.status, assignee=q.assignee, rule=q.rule,
                                                account=q.account), q.limit + 1, after)
    page = found[:q.limit]
    more = len(found) > q.limit
    return {"items": [a.to_dict() for a in page],
            "next_cursor": encode_cursor([str(page[-1].severity_rank), page[-1].last_hit_ts, page[-1].alert_id])
            if more else None}


def alert_detail(inbox: AlertInbox, alert_id: str) -> dict[str, Any] | None:
    alert = inbox.store.alert(alert_id)
    if alert is None:
        return None
    notification = inbox.store.notification(alert_id)
    return {"alert": alert.to_dict(), "hits": [h.to_dict() for h in inbox.store.hits_of(alert_id)],
            "audit": [e.to_dict() for e in inbox.store.audit_of(alert_id)],
            "notification": None if notification is None else {
                "status": notification.status, "attempts": notification.attempts,
                "next_attempt_at": notification.next_attempt_at, "last_error": notification.last_error}}


def rule_precision(inbox: AlertInbox) -> dict[str, Any]:
    return {"items": [p.to_dict() for p in precision_by_rule(inbox.store.closed_alerts())]}
