"""Where alerts live: the `AlertStore` interface and its workflow. Backends: embedded SQLite
(`alerts_sqlite.py`, `alerts.sqlite` in the data directory) and DynamoDB (`alerts_dynamodb.py`).

The base class owns the workflow (powertools' idempotency persistence layer is the model): it
skips hits already recorded, computes each change with the pure functions of `chalicelib.alerts`
and has a backend write it *only over the version it was computed from*; a backend that finds
the alert changed meanwhile raises `StaleAlertError` and the change is computed again, waiting by
the retry policy. Backends implement the `_`-prefixed primitives and the reads.

A change is written whole or not at all: the alert, its audit entry, the hit (which makes the
hit "recorded": a redelivered hit never counts twice), the account's latest-alert pointer for a
new alert, and its outbox entry when the new alert is to be published.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import ClassVar

from chalicelib.alerts import (
    Alert,
    AlertChange,
    AlertFilter,
    AlertHit,
    AlertNotFound,
    AlertPolicy,
    AuditEntry,
    Notification,
    apply_hit,
    assign,
    decide,
    notification_payload,
)
from chalicelib.retry import Backoff
from chalicelib.stores.exceptions import StoreError, TransientStoreError

#: (severity rank, last hit ts, alert id) of the last alert of a page: the next page starts below it
OrderKey = tuple[int, str, str]


class StaleAlertError(StoreError):
    """The alert (or the account's latest-alert pointer) changed since the change was computed."""


class HitRecordedError(StoreError):
    """Another writer recorded this hit first: nothing to do."""


class AlertStore(ABC):
    """Alerts, their hits and audit trail, and the outbox of notifications to publish."""

    backend: ClassVar[str]
    #: how a change is retried when another writer changed the alert first
    conflict_backoff: ClassVar[Backoff] = Backoff(attempts=8, base_delay_s=0.02, max_delay_s=0.5)

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self._sleep = sleep
        self._rng = rng or random.Random()

    # ------------------------------------------------------------------ the workflow

    def record_hits(self, hits: Sequence[AlertHit], policy: AlertPolicy, now: str) -> list[AlertChange]:
        """Open or join alerts for hits not recorded before (idempotent by hit_id), in the order
        given; return the changes made."""
        unique = list({h.hit_id: h for h in hits}.values())
        if not unique:
            return []
        changes: list[AlertChange] = []
        with self._batch():
            seen = self._recorded_hits([h.hit_id for h in unique])
            for hit in unique:
                if hit.hit_id not in seen:
                    change = self._record_hit(hit, policy, now)
                    if change is not None:
                        changes.append(change)
        return changes

    def _record_hit(self, hit: AlertHit, policy: AlertPolicy, now: str) -> AlertChange | None:
        return self._change(lambda: self._latest_alert(hit.account_id),
                            lambda current: apply_hit(current, hit, policy, now))

    def assign(self, alert_id: str, assignee: str, actor: str, now: str) -> Alert:
        with self._batch():
            change = self._change(lambda: self._existing(alert_id),
                                  lambda current: assign(self._found(current, alert_id), assignee, actor, now))
        assert change is not None
        return change.after

    def decide(self, alert_id: str, verdict: str, note: str | None, actor: str, policy: AlertPolicy,
               now: str) -> Alert:
        with self._batch():
            change = self._change(lambda: self._existing(alert_id),
                                  lambda current: decide(self._found(current, alert_id), verdict, note, actor,
                                                         policy, now))
        assert change is not None
        return change.after

    def closed_alerts(self, page: int = 500) -> Iterator[Alert]:
        """Every closed alert, in inbox order."""
        after: OrderKey | None = None
        while True:
            found = self.list_alerts(AlertFilter(status="closed"), page, after)
            yield from found
            if len(found) < page:
                return
            after = found[-1].order_key()

    def _change(self, load: Callable[[], Alert | None],
                compute: Callable[[Alert | None], AlertChange]) -> AlertChange | None:
        backoff = self.conflict_backoff
        for attempt in range(backoff.attempts):
            change = compute(load())
            try:
                self._commit(change)
                return change
            except HitRecordedError:
                return None
            except StaleAlertError:
                if backoff.is_last(attempt):
                    break
                self._sleep(backoff.delay(attempt, self._rng))
        raise TransientStoreError("alert store: the alert kept changing under concurrent writers; try again")

    def _existing(self, alert_id: str) -> Alert | None:
        return self.alert(alert_id)

    @staticmethod
    def _found(alert: Alert | None, alert_id: str) -> Alert:
        if alert is None:
            raise AlertNotFound(f"no alert {alert_id[:64]!r}")
        return alert

    # ------------------------------------------------------------------ primitives

    def _batch(self) -> AbstractContextManager[None]:
        """Around a workflow call: one transaction where the backend has them."""
        return _nothing()

    @abstractmethod
    def _recorded_hits(self, hit_ids: Sequence[str]) -> set[str]:
        """Those of `hit_ids` already recorded. One read."""

    @abstractmethod
    def _latest_alert(self, account_id: str) -> Alert | None:
        """The account's most recently opened alert."""

    @abstractmethod
    def _commit(self, change: AlertChange) -> None:
        """Write the change whole, only if the alert still has `change.before`'s version (absent
        for a new alert, whose account's pointer must still name `change.supersedes`) and the hit
        is not recorded yet. Raises StaleAlertError, HitRecordedError, TransientStoreError."""

    # ------------------------------------------------------------------ reads

    @abstractmethod
    def alert(self, alert_id: str) -> Alert | None:
        """The alert, or None."""

    @abstractmethod
    def list_alerts(self, where: AlertFilter, limit: int, after: OrderKey | None = None) -> list[Alert]:
        """Up to `limit` alerts matching `where`, most severe first, then newest last hit, then id
        (all descending), starting below `after`."""

    @abstractmethod
    def hits_of(self, alert_id: str) -> list[AlertHit]:
        """The alert's hits, by time."""

    @abstractmethod
    def audit_of(self, alert_id: str) -> list[AuditEntry]:
        """The alert's audit trail, oldest first."""

    # ------------------------------------------------------------------ outbox

    @abstractmethod
    def due_notifications(self, now: str, limit: int) -> list[Notification]:
        """Pending notifications whose next attempt is due at `now`, oldest due first."""

    @abstractmethod
    def save_notification(self, notification: Notification) -> None:
        """Store a notification's new state (attempts, status, next attempt, last error)."""

    @abstractmethod
    def notification(self, alert_id: str) -> Notification | None:
        """The alert's notification, if it has one."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections."""


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def notification_for(change: AlertChange) -> Notification:
    return Notification(change.after.alert_id, notification_payload(change.after), 0, change.audit.at)
