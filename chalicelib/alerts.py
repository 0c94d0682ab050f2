"""Alerts: what an investigator works on. Pure: every function takes the alert as it stands and
returns what it becomes, with the audit entry that records the change; no I/O, no clock.

* A hit (enforce mode only: shadow hits count in no decision) opens an alert for its account or
  joins the account's latest alert when that one is open or assigned - one open alert per
  account - or is closed but still quiet (the hit's time is before `quiet_until`, the alert's last
  hit at close plus the quiet period). A later hit opens a new alert.
* An investigator assigns an open alert and gives a verdict (`fraud`, `legit`, `unsure`), which
  closes it. A transition from the wrong status is an `AlertConflict` (409), a bad value an
  `AlertValueError` (400); both say why.
* `version` counts changes; a store writes a change only over the version it was computed from,
  so two writers never both apply theirs.

DESIGN.md, "Alerts", is the contract.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from chalicelib.entities import iso_ms

Status = Literal["open", "assigned", "closed"]
STATUSES: tuple[Status, ...] = ("open", "assigned", "closed")
Verdict = Literal["fraud", "legit", "unsure"]
VERDICTS: tuple[Verdict, ...] = ("fraud", "legit", "unsure")
#: severities in rising order (the rules' `severity` values); a rank is the position here
SEVERITIES = ("low", "medium", "high", "critical")
#: a new alert at or above this severity is published (webhook, SNS)
NOTIFY_FROM = "high"
#: who changes an alert: an investigator's name, e-mail or IAM ARN; the pipeline is PIPELINE
ACTOR_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:/+=,-]{0,199}$")
PIPELINE = "pipeline"
NOTE_MAX = 2000
ALERT_ID_LENGTH = 32


class AlertError(Exception):
    """A change to an alert that cannot be made; the message says why."""


class AlertConflict(AlertError):
    """The alert's status does not allow the change (a verdict on a closed alert): HTTP 409."""


class AlertValueError(AlertError, ValueError):
    """A value that does not fit (an assignee that is not a name): HTTP 400."""


class AlertNotFound(AlertError, LookupError):
    """No alert has this id: HTTP 404."""


def severity_rank(severity: str) -> int:
    """0 for low .. 3 for critical; an unknown severity ranks as medium."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else 1


def alert_id(account_id: str, first_hit_id: str) -> str:
    """The same account and first hit always name the same alert (two writers racing agree)."""
    return hashlib.sha256(f"{account_id}|{first_hit_id}".encode()).hexdigest()[:ALERT_ID_LENGTH]


def check_actor(name: str, what: str = "actor") -> str:
    if not isinstance(name, str) or not ACTOR_PATTERN.match(name):
        raise AlertValueError(f"{what}: give a name of 1 to 200 letters, digits or ._@:/+=,- "
                              f"(an investigator's name, e-mail or IAM ARN), not {str(name)[:60]!r}")
    return name


@dataclass(frozen=True, slots=True)
class AlertHit:
    """The part of a hit an alert keeps."""

    hit_id: str
    account_id: str
    rule_id: str
    severity: str
    ts: str  # iso_ms UTC, like the hit's
    event_id: str

    @classmethod
    def of(cls, hit: Any) -> AlertHit:
        """From a `Hit` (or anything with its fields)."""
        return cls(hit.hit_id, hit.account_id, hit.rule_id, hit.severity, hit.ts, hit.event_id)

    def to_dict(self) -> dict[str, Any]:
        # field by field (what `asdict` gives, without its deep copies: this is per hit)
        return {"hit_id": self.hit_id, "account_id": self.account_id, "rule_id": self.rule_id,
                "severity": self.severity, "ts": self.ts, "event_id": self.event_id}


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    account_id: str
    status: Status
    first_hit_ts: str
    last_hit_ts: str
    hit_count: int
    severity: str
    rules: tuple[str, ...]  # sorted, distinct
    opened_at: str  # wall-clock time the alert was opened (iso_ms)
    updated_at: str
    assignee: str | None = None
    verdict: Verdict | None = None
    note: str | None = None
    closed_at: str | None = None
    #: hits before this time still join the closed alert (last hit at close + quiet period)
    quiet_until: str | None = None
    version: int = 1

    @property
    def severity_rank(self) -> int:
        return severity_rank(self.severity)

    def order_key(self) -> tuple[int, str, str]:
        """The inbox order, descending: most severe, then newest last hit, then id."""
        return (self.severity_rank, self.last_hit_ts, self.alert_id)

    def to_dict(self) -> dict[str, Any]:
        # field by field, in their order (what `asdict` gives, rules as a list): this is per hit
        return {"alert_id": self.alert_id, "account_id": self.account_id, "status": self.status,
                "first_hit_ts": self.first_hit_ts, "last_hit_ts": self.last_hit_ts, "hit_count": self.hit_count,
                "severity": self.severity, "rules": list(self.rules), "opened_at": self.opened_at,
                "updated_at": self.updated_at, "assignee": self.assignee, "verdict": self.verdict,
                "note": self.note, "closed_at": self.closed_at, "quiet_until": self.quiet_until,
                "version": self.version}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        return cls(**{**{k: data[k] for k in cls.__dataclass_fields__ if k in data},
                      "rules": tuple(data["rules"]), "hit_count": int(data["hit_count"]),
                      "version": int(data["version"])})


@dataclass(frozen=True, slots=True)
class AuditEntry:
    alert_id: str
    at: str  # wall-clock, iso_ms
    actor: str
    action: Literal["opened", "hit", "assigned", "verdict"]
    changes: dict[str, Any]  # field -> [before, after]
    version: int  # the alert's version after the change: entries of one alert are ordered by it

    def to_dict(self) -> dict[str, Any]:
        # field by field, `changes` copied like `asdict` copies it: this is per hit
        return {"alert_id": self.alert_id, "at": self.at, "actor": self.actor, "action": self.action,
                "changes": _copied(self.changes), "version": self.version}


def _copied(value: Any) -> Any:
    """A copy of JSON-like data (dicts, lists, tuples of scalars), as `asdict` copies a field."""
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_copied(v) for v in value)
    return value


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One change to write: the alert before (None: a new alert) and after, its audit entry, the
    hit that caused it (if any), and whether the new alert is to be published."""

    before: Alert | None
    after: Alert
    audit: AuditEntry
    hit: AlertHit | None = None
    notify: bool = False
    #: a new alert: the account's alert it follows as the latest (None: the account's first)
    supersedes: str | None = None


@dataclass(frozen=True)
class AlertPolicy:
    quiet_period: timedelta = timedelta(hours=24)
    notify_from: str = NOTIFY_FROM


def _diff(before: Alert | None, after: Alert, names: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        old = None if before is None else getattr(before, name)
        new = getattr(after, name)
        if old != new:
            out[name] = [list(old) if isinstance(old, tuple) else old, list(new) if isinstance(new, tuple) else new]
    return out


HIT_FIELDS = ("status", "first_hit_ts", "last_hit_ts", "hit_count", "severity", "rules")


def apply_hit(latest: Alert | None, hit: AlertHit, policy: AlertPolicy, now: str) -> AlertChange:
    """The change a new hit makes: join `latest` (the account's most recent alert) when it is open,
    assigned, or closed and still quiet for the hit's time; else open a new alert."""
    joins = latest is not None and (latest.status != "closed" or (latest.quiet_until is not None
                                                                  and hit.ts < latest.quiet_until))
    if latest is not None and joins:
        rank = max(latest.severity_rank, severity_rank(hit.severity))
        # `replace(latest, ...)` spelled out: this runs per hit, and `replace` costs twice as much
        after = Alert(latest.alert_id, latest.account_id, latest.status, min(latest.first_hit_ts, hit.ts),
                      max(latest.last_hit_ts, hit.ts), latest.hit_count + 1, SEVERITIES[rank],
                      tuple(sorted({*latest.rules, hit.rule_id})), latest.opened_at, now, latest.assignee,
                      latest.verdict, latest.note, latest.closed_at, latest.quiet_until, latest.version + 1)
        audit = AuditEntry(after.alert_id, now, PIPELINE, "hit",
                           {"hit_id": [None, hit.hit_id], **_diff(latest, after, HIT_FIELDS)}, after.version)
        return AlertChange(latest, after, audit, hit)
    severity = hit.severity if hit.severity in SEVERITIES else "medium"
    after = Alert(alert_id(hit.account_id, hit.hit_id), hit.account_id, "open", hit.ts, hit.ts, 1, severity,
                  (hit.rule_id,), now, now)
    audit = AuditEntry(after.alert_id, now, PIPELINE, "opened",
                       {"hit_id": [None, hit.hit_id], **_diff(None, after, HIT_FIELDS)}, after.version)
    return AlertChange(None, after, audit, hit,
                       notify=severity_rank(severity) >= severity_rank(policy.notify_from),
                       supersedes=None if latest is None else latest.alert_id)


def apply_hits(latest: Alert | None, hits: Sequence[AlertHit], policy: AlertPolicy, now: str) -> list[AlertChange]:
    """The changes a sequence of one account's hits make, in order, exactly as if they came one at
    a time: each is `apply_hit` over the alert the previous one left as the account's latest (its
    `after`). A hit may open a new alert mid-sequence (the latest was closed and its quiet period
    over for that hit); the new alert is open, so the hits after it join it."""
    changes: list[AlertChange] = []
    for hit in hits:
        change = apply_hit(latest, hit, policy, now)
        changes.append(change)
        latest = change.after
    return changes


def net_changes(changes: Sequence[AlertChange]) -> list[tuple[Alert | None, Alert]]:
    """What a sequence of changes (`apply_hits`') does to each alert it touches, in first-touch
    order: the alert before the first change (None: opened by the sequence) and after the last.
    Writing these, with every change's audit entry and hit, is writing the changes one by one."""
    net: dict[str, tuple[Alert | None, Alert]] = {}
    for change in changes:
        alert_id = change.after.alert_id
        first = net.get(alert_id)
        net[alert_id] = (change.before if first is None else first[0], change.after)
    return list(net.values())


def assign(alert: Alert, assignee: str, actor: str, now: str) -> AlertChange:
    """Give an open (or assigned) alert to `assignee`; a closed alert cannot be assigned."""
    check_actor(assignee, "assignee")
    if alert.status == "closed":
        raise AlertConflict(f"alert {alert.alert_id} is closed (verdict {alert.verdict}); it cannot be assigned")
    after = replace(alert, status="assigned", assignee=assignee, updated_at=now, version=alert.version + 1)
    return AlertChange(alert, after, AuditEntry(alert.alert_id, now, actor, "assigned",
                                                _diff(alert, after, ("status", "assignee")), after.version))


def decide(alert: Alert, verdict: str, note: str | None, actor: str, policy: AlertPolicy,
           now: str) -> AlertChange:
    """Record the verdict and close the alert; a closed alert keeps its first verdict."""
    if verdict not in VERDICTS:
        raise AlertValueError(f"verdict: use one of {', '.join(VERDICTS)}, not {str(verdict)[:40]!r}")
    if note is not None and (not isinstance(note, str) or len(note) > NOTE_MAX):
        raise AlertValueError(f"note: give text of at most {NOTE_MAX} characters")
    if alert.status == "closed":
        raise AlertConflict(f"alert {alert.alert_id} is already closed with verdict {alert.verdict}")
    quiet_until = _plus(alert.last_hit_ts, policy.quiet_period)
    after = replace(alert, status="closed", verdict=verdict, note=note, closed_at=now,  # type: ignore[arg-type]
                    quiet_until=quiet_until, assignee=alert.assignee or actor, updated_at=now,
                    version=alert.version + 1)
    return AlertChange(alert, after, AuditEntry(
        alert.alert_id, now, actor, "verdict",
        _diff(alert, after, ("status", "verdict", "note", "assignee", "quiet_until")), after.version))


def _plus(ts: str, delta: timedelta) -> str:
    return iso_ms(datetime.fromisoformat(ts.replace("Z", "+00:00")) + delta)


@dataclass(frozen=True)
class RulePrecision:
    rule_id: str
    fraud: int
    legit: int
    unsure: int

    @property
    def precision(self) -> float | None:
        """fraud / (fraud + legit) over the rule's decided alerts; `unsure` counts in neither."""
        decided = self.fraud + self.legit
        return self.fraud / decided if decided else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "precision": self.precision}


def precision_by_rule(closed: Iterable[Alert]) -> list[RulePrecision]:
    """Per rule, how the closed alerts it took part in were decided; rules sorted by id."""
    counts: dict[str, dict[str, int]] = {}
    for alert in closed:
        if alert.status != "closed" or alert.verdict is None:
            continue
        for rule in alert.rules:
            per = counts.setdefault(rule, {v: 0 for v in VERDICTS})
            per[alert.verdict] += 1
    return [RulePrecision(rule, c["fraud"], c["legit"], c["unsure"]) for rule, c in sorted(counts.items())]


@dataclass(frozen=True)
class AlertFilter:
    status: Status | None = None
    assignee: str | None = None
    rule: str | None = None
    account: str | None = None

    def matches(self, alert: Alert) -> bool:
        return ((self.status is None or alert.status == self.status)
                and (self.assignee is None or alert.assignee == self.assignee)
                and (self.rule is None or self.rule in alert.rules)
                and (self.account is None or alert.account_id == self.account))


@dataclass(frozen=True)
class Notification:
    """A new alert to publish (webhook or SNS), kept in the store's outbox until delivered."""

    alert_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    next_attempt_at: str = ""
    status: Literal["pending", "sent", "failed"] = "pending"
    last_error: str | None = None


def notification_payload(alert: Alert) -> dict[str, Any]:
    return {"type": "alert.opened", "alert": alert.to_dict()}
