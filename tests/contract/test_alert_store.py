"""The AlertStore contract, run on SQLite (a file) and on DynamoDB (moto's, through a real moto
server on loopback and a real boto3 client): one open alert per account, idempotent hits, the
quiet period, transitions and their audit trail, inbox order and cursors, the outbox, and two
writers racing on one account."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.alerts import AlertConflict, AlertFilter, AlertHit, AlertNotFound, AlertPolicy, AlertValueError
from chalicelib.stores.alerts import AlertStore
from chalicelib.stores.alerts_sqlite import SQLiteAlertStore
from scripts.moto_server import running_moto

POLICY = AlertPolicy(quiet_period=timedelta(hours=1))
NOW = "2026-12-01T10:00:00.000Z"


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with (tmp_path_factory.mktemp("moto") / "server.log").open("w") as log, running_moto(log) as url:
        yield url


class OneRequestAtATime:
    """A boto3 client whose requests reach moto one at a time. DynamoDB applies each request
    atomically; moto applies a transaction without a lock (it copies the table and, on a failed
    condition, puts that copy back, undoing what another thread committed meanwhile). Writers
    still interleave between requests (read, compute, conditional write): the race the store's
    version checks must win."""

    _lock = threading.Lock()

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return one_at_a_time


def dynamodb_client(url: str) -> Any:
    import boto3

    return OneRequestAtATime(boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1",
                                          aws_access_key_id="testing", aws_secret_access_key="testing"))


def open_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest, table: str) -> AlertStore:
    if backend == "sqlite":
        return SQLiteAlertStore(tmp_path / "alerts.sqlite")
    from chalicelib.stores.alerts_dynamodb import DynamoDBAlertStore

    return DynamoDBAlertStore(dynamodb_client(request.getfixturevalue("moto_url")), table)


@pytest.fixture(params=["sqlite", pytest.param("dynamodb", marks=pytest.mark.integration)])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A function opening the store (again: a second writer or a restarted process)."""
    table = f"alerts-{uuid.uuid4().hex[:8]}"
    if request.param == "dynamodb":
        from chalicelib.stores.alerts_dynamodb import create_alert_table

        create_alert_table(dynamodb_client(request.getfixturevalue("moto_url")), table)
    opened: list[AlertStore] = []

    def open_() -> AlertStore:
        opened.append(open_store(request.param, tmp_path, request, table))
        return opened[-1]

    yield open_
    for s in opened:
        s.close()


@pytest.fixture
def store(opener: Any) -> AlertStore:
    return opener()  # type: ignore[no-any-return]


def hit(n: int, account: str = "a1", *, rule: str = "velocity-1m", severity: str = "medium",
        ts: str | None = None) -> AlertHit:
    return AlertHit(f"h{n:04d}", account, rule, severity, ts or f"2026-12-01T09:{n // 60:02d}:{n % 60:02d}.000Z",
                    f"e{n}")


def test_hits_of_one_account_make_one_alert_and_redelivery_counts_nothing_twice(store: AlertStore) -> None:
    hits = [hit(1), hit(2, rule="high-value-5m", severity="high"), hit(3, "a2"), hit(4)]
    changes = store.record_hits(hits, POLICY, NOW)
    assert [c.audit.action for c in changes] == ["opened", "hit", "opened", "hit"]
    again = store.record_hits([*hits, hits[1]], POLICY, NOW)  # a redelivered batch, a hit twice in it
    assert again == []
    a1 = store.list_alerts(AlertFilter(account="a1"), 10)
    assert len(a1) == 1
    alert = a1[0]
    assert (alert.status, alert.hit_count, alert.severity, alert.rules) == (
        "open", 3, "high", ("high-value-5m", "velocity-1m"))
    assert (alert.first_hit_ts, alert.last_hit_ts) == (hits[0].ts, hits[3].ts)
    assert [h.hit_id for h in store.hits_of(alert.alert_id)] == ["h0001", "h0002", "h0004"]
    assert [e.action for e in store.audit_of(alert.alert_id)] == ["opened", "hit", "hit"]
    assert store.alert(alert.alert_id) == alert


def test_assign_and_verdict_close_the_alert_with_an_audit_trail(store: AlertStore) -> None:
    store.record_hits([hit(1)], POLICY, NOW)
    (alert,) = store.list_alerts(AlertFilter(), 10)
    assigned = store.assign(alert.alert_id, "ana@example.com", "lead", "2026-12-01T10:01:00.000Z")
    assert (assigned.status, assigned.assignee) == ("assigned", "ana@example.com")
    closed = store.decide(alert.alert_id, "fraud", "card testing", "ana@example.com", POLICY,
                          "2026-12-01T10:02:00.000Z")
    assert (closed.status, closed.verdict, closed.note) == ("closed", "fraud", "card testing")
    assert closed.quiet_until == "2026-12-01T10:00:01.000Z"
    trail = store.audit_of(alert.alert_id)
    assert [(e.action, e.actor) for e in trail] == [("opened", "pipeline"), ("assigned", "lead"),
                                                    ("verdict", "ana@example.com")]
    assert trail[1].changes["assignee"] == [None, "ana@example.com"]
    assert trail[2].changes["status"] == ["assigned", "closed"]
    with pytest.raises(AlertConflict, match="already closed"):
        store.decide(alert.alert_id, "legit", None, "bob", POLICY, NOW)
    with pytest.raises(AlertConflict, match="closed"):
        store.assign(alert.alert_id, "bob", "bob", NOW)
    with pytest.raises(AlertValueError, match="assignee"):
        store.record_hits([hit(9, "a9")], POLICY, NOW)
        store.assign(store.list_alerts(AlertFilter(account="a9"), 1)[0].alert_id, "no spaces allowed", "x", NOW)
    with pytest.raises(AlertNotFound):
        store.decide("nope", "fraud", None, "bob", POLICY, NOW)
    assert store.alert(alert.alert_id) == closed  # refused changes changed nothing


def test_after_the_quiet_period_a_hit_opens_a_new_alert(store: AlertStore) -> None:
    store.record_hits([hit(1, ts="2026-12-01T09:00:00.000Z")], POLICY, NOW)
    (first,) = store.list_alerts(AlertFilter(), 10)
    store.decide(first.alert_id, "legit", None, "ana", POLICY, NOW)
    store.record_hits([hit(2, ts="2026-12-01T09:59:59.999Z")], POLICY, NOW)  # inside the quiet hour
    assert len(store.list_alerts(AlertFilter(), 10)) == 1
    quiet = store.alert(first.alert_id)
    assert quiet is not None and (quiet.status, quiet.hit_count) == ("closed", 2)
    store.record_hits([hit(3, ts="2026-12-01T10:00:00.000Z")], POLICY, NOW)  # the quiet period is over
    alerts = store.list_alerts(AlertFilter(), 10)
    assert len(alerts) == 2
    new = next(a for a in alerts if a.alert_id != first.alert_id)
    assert (new.status, new.hit_count) == ("open", 1)
    store.record_hits([hit(4, ts="2026-12-01T10:00:00.500Z")], POLICY, NOW)
    assert store.alert(new.alert_id).hit_count == 2  # type: ignore[union-attr]


def test_inbox_order_filters_and_cursor(store: AlertStore) -> None:
    store.record_hits([hit(n, f"acct-{n}", severity=sev, rule=rule) for n, sev, rule in [
        (1, "low", "r-a"), (2, "critical", "r-b"), (3, "high", "r-a"), (4, "high", "r-b"), (5, "medium", "r-a")]],
        POLICY, NOW)
    everything = store.list_alerts(AlertFilter(), 100)
    assert [a.account_id for a in everything] == ["acct-2", "acct-4", "acct-3", "acct-5", "acct-1"]
    paged, after = [], None
    while True:
        page = store.list_alerts(AlertFilter(), 2, after)
        paged += page
        if len(page) < 2:
            break
        after = page[-1].order_key()
    assert paged == everything
    assert [a.account_id for a in store.list_alerts(AlertFilter(rule="r-a"), 100)] == ["acct-3", "acct-5", "acct-1"]
    store.assign(everything[1].alert_id, "ana", "ana", NOW)
    assert [a.account_id for a in store.list_alerts(AlertFilter(assignee="ana"), 100)] == ["acct-4"]
    assert [a.account_id for a in store.list_alerts(AlertFilter(status="open"), 100)] == [
        "acct-2", "acct-3", "acct-5", "acct-1"]
    assert list(store.closed_alerts()) == []


def test_a_new_severe_alert_is_queued_for_publishing_once(store: AlertStore) -> None:
    store.record_hits([hit(1, "low-acct", severity="medium"), hit(2, "hot", severity="critical"),
                       hit(3, "hot", severity="critical")], POLICY, NOW)
    due = store.due_notifications(NOW, 10)
    assert len(due) == 1 and due[0].payload["alert"]["account_id"] == "hot"
    assert store.due_notifications("2026-12-01T09:59:59.999Z", 10) == []  # not due yet
    from dataclasses import replace

    store.save_notification(replace(due[0], attempts=1, next_attempt_at="2026-12-01T10:05:00.000Z"))
    assert store.due_notifications(NOW, 10) == []
    assert len(store.due_notifications("2026-12-01T10:05:00.000Z", 10)) == 1
    store.save_notification(replace(due[0], status="sent", attempts=2))
    assert store.due_notifications("2027-01-01T00:00:00.000Z", 10) == []
    assert store.notification(due[0].alert_id).status == "sent"  # type: ignore[union-attr]


def test_two_writers_racing_on_one_account_keep_one_alert_and_every_hit(opener: Any) -> None:
    writers = [opener(), opener()]
    errors: list[BaseException] = []

    def write(store: AlertStore, offset: int) -> None:
        try:
            for n in range(offset, offset + 10):
                store.record_hits([hit(n, "shared"), hit(n + 100, "shared")], POLICY, NOW)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w, i * 10)) for i, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    (alert,) = writers[0].list_alerts(AlertFilter(account="shared"), 10)
    assert alert.hit_count == 40 == len(writers[1].hits_of(alert.alert_id))
    assert [e.version for e in writers[0].audit_of(alert.alert_id)] == list(range(1, 41))
