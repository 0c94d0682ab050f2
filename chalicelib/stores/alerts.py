"""Where alerts live: the `AlertStore` interface and its workflow. Backends: embedded SQLite
(`alerts_sqlite.py`, `alerts.sqlite` in the data directory) and DynamoDB (`alerts_dynamodb.py`).

The base class owns the workflow (powertools' idempotency persistence layer is the model): it
skips hits already recorded, computes the changes with the pure functions of `chalicelib.alerts`
(a batch's hits folded per account: each alert is written once per batch) and has a backend write
them *only over the version they were computed from*; a backend that finds the alert changed
meanwhile raises `StaleAlertError` and the changes are computed again, waiting by the retry
policy. Backends implement the `_`-prefixed primitives and the reads.

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
    apply_hits,
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
        given; return the changes made, in that order.

        The hits are folded per account: the accounts' latest alerts are read once (in one read
        where the backend can), each account's hits applied in order in memory (`apply_hits`: the
        changes of one hit at a time) and written together over one check of what they were
        computed from (the accounts in one write where the backend can)."""
        unique = list({h.hit_id: h for h in hits}.values())
        if not unique:
            return []
        made: dict[str, AlertChange] = {}
        with self._batch():
            seen = self._recorded_hits(unique)
            by_account: dict[str, list[AlertHit]] = {}
            for hit in unique:
                if hit.hit_id not in seen:
                    by_account.setdefault(hit.account_id, []).append(hit)
            if by_account:
                latest = self._latest_alerts(list(by_account))
                groups = [apply_hits(latest.get(account_id), account_hits, policy, now)
                          for account_id, account_hits in by_account.items()]
                outcomes = self._commit_accounts(groups)
                for (account_id, account_hits), changes, outcome in zip(by_account.items(), groups, outcomes,
                                                                        strict=True):
                    if isinstance(outcome, int):  # `outcome` changes written; the rest continue from there
                        written = changes[:outcome]
                        rest = self._record_account(account_id, account_hits[outcome:], written[-1].after, None,
                                                    policy, now) if outcome < len(changes) else []
                    else:
                        written, rest = [], self._record_account(account_id, account_hits, None, outcome, policy, now)
                    for change in (*written, *rest):
                        assert change.hit is not None
                        made[change.hit.hit_id] = change
        return [made[h.hit_id] for h in unique if h.hit_id in made]

    def _record_account(self, account_id: str, hits: Sequence[AlertHit], current: Alert | None,
                        failure: StoreError | None, policy: AlertPolicy, now: str) -> list[AlertChange]:
        """Write one account's hits, in order, over `current` (its latest alert), after a write
        of them that failed: a hit another writer recorded first is dropped, and when the alert
        (or the account's pointer) changed meanwhile it is read again and the hits computed over
        it, waiting by the retry policy."""
        backoff = self.conflict_backoff
        made: list[AlertChange] = []
        pending, attempt = list(hits), 0
        while pending:
            if failure is not None:
                recorded = (self._recorded_hits(pending)
                            if isinstance(failure, HitRecordedError) else set())
                if recorded:  # nothing to wait for: the others are computed again now
                    pending = [h for h in pending if h.hit_id not in recorded]
                else:
                    if backoff.is_last(attempt):
                        raise TransientStoreError("alert store: the alert kept changing under concurrent writers; "
                                                  "try again")
                    self._sleep(backoff.delay(attempt, self._rng))
                    attempt += 1
                current, failure = self._latest_alert(account_id), None
                continue
            changes = apply_hits(current, pending, policy, now)
            try:
                written = self._commit_changes(changes)
            except (HitRecordedError, StaleAlertError) as exc:
                failure = exc
                continue
            made.extend(changes[:written])
            pending, current, attempt = pending[written:], changes[written - 1].after, 0
        return made

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
    def _recorded_hits(self, hits: Sequence[AlertHit]) -> set[str]:
        """The ids of those of `hits` already recorded. One read. (A hit is recorded by its id; a
        backend may look it up by (ts, hit_id): the same hit always has the same ts.)"""

    @abstractmethod
    def _latest_alert(self, account_id: str) -> Alert | None:
        """The account's most recently opened alert."""

    def _latest_alerts(self, account_ids: Sequence[str]) -> dict[str, Alert]:
        """The latest alert of each of the accounts that has one. One read where the backend can."""
        out: dict[str, Alert] = {}
        for account_id in account_ids:
            latest = self._latest_alert(account_id)
            if latest is not None:
                out[account_id] = latest
        return out

    def _commit_accounts(self, groups: Sequence[Sequence[AlertChange]]) -> list[int | StoreError]:
        """`_commit_changes` for several accounts' change sequences (one per account, none empty):
        for each, how many of its changes were written, or the StaleAlertError or HitRecordedError
        that kept it from being written. One write where the backend can; this default writes
        them one after the other."""
        outcomes: list[int | StoreError] = []
        for changes in groups:
            try:
                outcomes.append(self._commit_changes(changes))
            except (StaleAlertError, HitRecordedError) as exc:
                outcomes.append(exc)
        return outcomes

    def _commit_changes(self, changes: Sequence[AlertChange]) -> int:
        """Write the first changes of one account's sequence (`apply_hits`' over the account's
        latest alert): all, or as many as one write holds (at least one), whole or not at all;
        return how many. Raises like `_commit`, when the account's latest alert or pointer is no
        longer what the sequence was computed over, or one of its hits is recorded already. This
        default writes one change at a time."""
        self._commit(changes[0])
        return 1

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
