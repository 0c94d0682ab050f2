"""The alert inbox: feeds the pipeline's hits into the alert store, publishes new severe alerts,
and carries the investigator's transitions (the API calls it). No I/O of its own: the store and
the publisher do that.

Publishing never holds up a shard. A new alert of severity `high` or above gets an outbox entry
in the same write as the alert itself; after a batch has committed, the pipeline calls
`publish_due`, which makes at most one attempt per due entry (no sleeping inside a batch), stops
at the first failure (a receiver that is down costs a batch at most one timeout) and swallows
every failure. A failed attempt n schedules the next one `retry.Backoff.delay(n)`
later (the project's one retry policy, here with minutes rather than milliseconds); after the
policy's last attempt the entry is kept as `failed`, with its last error, for an operator
(`GET /api/alerts/{id}` shows it). A crash between publishing and marking the entry sent may
publish it again: receivers deduplicate by the alert id.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from chalicelib.alerts import Alert, AlertChange, AlertHit, AlertPolicy, Notification
from chalicelib.entities import iso_ms
from chalicelib.hits import Hit
from chalicelib.retry import Backoff
from chalicelib.stores.alerts import AlertStore
from chalicelib.stores.notifications import NotificationError, Publisher

log = logging.getLogger(__name__)

#: attempts of one notification across batches: 30 s, 1 min, ... at most an hour apart, 8 in all
NOTIFY_BACKOFF = Backoff(attempts=8, base_delay_s=30.0, max_delay_s=3600.0)
#: notifications tried after one batch; the rest wait for the next batch
NOTIFY_PER_BATCH = 10


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PublishReport:
    sent: int = 0
    failed: int = 0  # attempts that failed (retried later, or given up)
    given_up: int = 0


@dataclass
class AlertInbox:
    store: AlertStore
    policy: AlertPolicy = field(default_factory=AlertPolicy)
    publisher: Publisher | None = None
    clock: Callable[[], datetime] = _now
    backoff: Backoff = NOTIFY_BACKOFF
    rng: random.Random = field(default_factory=random.Random)
    #: where the investigator's transitions are written, opened for the actor (in AWS: the table
    #: through the alert-writer role, which the read-only API role assumes per change); None: `store`
    writer: Callable[[str], AlertStore] | None = None

    def now(self) -> str:
        return iso_ms(self.clock())

    def record(self, hits: Sequence[Hit]) -> list[AlertChange]:
        """Open or join alerts for the batch's enforce-mode hits; idempotent by hit_id."""
        wanted = [AlertHit.of(h) for h in hits if h.mode == "enforce"]
        return self.store.record_hits(wanted, self.policy, self.now()) if wanted else []

    def publish_due(self, limit: int = NOTIFY_PER_BATCH) -> PublishReport:
        """One attempt for each due notification; never raises (see the module docstring)."""
        report = PublishReport()
        if self.publisher is None:
            return report
        try:
            due = self.store.due_notifications(self.now(), limit)
        except Exception as exc:  # the batch has committed: nothing here may fail it
            log.warning("alert outbox unreadable, notifications wait for the next batch: %s", exc)
            return report
        for notification in due:
            try:
                self._attempt(notification, report)
            except Exception as exc:
                log.warning("alert %s: notification state not saved (it is tried again): %s",
                            notification.alert_id, exc)
            if report.failed:
                break  # the receiver is down or slow: the others wait for a later batch, not this one
        return report

    def _attempt(self, notification: Notification, report: PublishReport) -> None:
        assert self.publisher is not None
        attempt = notification.attempts
        try:
            self.publisher.publish(notification.payload)
        except NotificationError as exc:
            report.failed += 1
            if self.backoff.is_last(attempt):
                report.given_up += 1
                log.error("alert %s: notification failed %d times, kept as failed: %s", notification.alert_id,
                          attempt + 1, exc)
                self.store.save_notification(replace(notification, attempts=attempt + 1, status="failed",
                                                     last_error=str(exc)[:500]))
                return
            wait = timedelta(seconds=self.backoff.delay(attempt, self.rng))
            log.warning("alert %s: notification failed (attempt %d), retried after %s: %s",
                        notification.alert_id, attempt + 1, wait, exc)
            self.store.save_notification(replace(notification, attempts=attempt + 1, last_error=str(exc)[:500],
                                                 next_attempt_at=iso_ms(self.clock() + wait)))
            return
        report.sent += 1
        self.store.save_notification(replace(notification, attempts=attempt + 1, status="sent", last_error=None))

    def assign(self, alert_id: str, assignee: str, actor: str) -> Alert:
        with self._writing(actor) as store:
            return store.assign(alert_id, assignee, actor, self.now())

    def decide(self, alert_id: str, verdict: str, note: str | None, actor: str) -> Alert:
        with self._writing(actor) as store:
            return store.decide(alert_id, verdict, note, actor, self.policy, self.now())

    @contextmanager
    def _writing(self, actor: str) -> Iterator[AlertStore]:
        if self.writer is None:
            yield self.store
            return
        store = self.writer(actor)
        try:
            yield store
        finally:
            store.close()

    def close(self) -> None:
        self.store.close()
