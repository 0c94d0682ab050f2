"""The AlertStore contract for batches (issue 20: a batch's hits are written per account, each
alert once), on SQLite and DynamoDB: many hits of one account in one batch, joining a closed but
quiet alert and opening a new one mid-batch, give the audit trail, hits and notifications of one
hit at a time; a partly recorded batch redelivered counts only its new hits; DynamoDB writes an
account's changes in transactions of at most 100 items; a hit computed over a closed but quiet
alert is refused, by either write path, once another writer opened the account's next alert."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

from chalicelib.alerts import AlertFilter, apply_hits
from chalicelib.stores.alerts import AlertStore, StaleAlertError
from tests.contract import test_alert_store as contract
from tests.contract.test_alert_store import NOW, POLICY, hit

# the stores of the contract tests (SQLite, DynamoDB on moto)
moto_url = contract.moto_url
opener = contract.opener
store = contract.store


def test_forty_hits_of_one_account_in_one_batch_make_forty_audit_entries(store: AlertStore) -> None:
    changes = store.record_hits([hit(n, "busy") for n in range(1, 41)], POLICY, NOW)
    assert [c.audit.version for c in changes] == list(range(1, 41))
    (alert,) = store.list_alerts(AlertFilter(account="busy"), 10)
    assert (alert.hit_count, alert.version, alert.first_hit_ts, alert.last_hit_ts) == (
        40, 40, hit(1).ts, hit(40).ts)
    assert [e.version for e in store.audit_of(alert.alert_id)] == list(range(1, 41))
    assert [e.action for e in store.audit_of(alert.alert_id)] == ["opened"] + ["hit"] * 39
    assert [h.hit_id for h in store.hits_of(alert.alert_id)] == [f"h{n:04d}" for n in range(1, 41)]
    assert [c.after for c in changes[-1:]] == [alert]


def test_a_batch_joins_a_quiet_alert_then_opens_a_new_one_as_one_hit_at_a_time_would(store: AlertStore) -> None:
    store.record_hits([hit(1, "acct", ts="2026-12-01T09:00:00.000Z")], POLICY, NOW)
    (first,) = store.list_alerts(AlertFilter(), 10)
    store.decide(first.alert_id, "legit", None, "ana", POLICY, NOW)  # quiet until 10:00
    batch = [hit(2, "acct", ts="2026-12-01T09:30:00.000Z"),  # joins the closed alert: still quiet
             hit(3, "acct", ts="2026-12-01T10:00:00.000Z", severity="critical", rule="r-new"),  # opens a new one
             hit(4, "other"),
             hit(5, "acct", ts="2026-12-01T09:45:00.000Z"),  # joins the new one: it is the latest
             hit(6, "acct", ts="2026-12-01T10:30:00.000Z", severity="high")]
    changes = store.record_hits(batch, POLICY, NOW)
    assert [(c.hit.hit_id if c.hit else None, c.audit.action, c.notify) for c in changes] == [
        ("h0002", "hit", False), ("h0003", "opened", True), ("h0004", "opened", False), ("h0005", "hit", False),
        ("h0006", "hit", False)]
    assert changes[1].supersedes == first.alert_id and changes[2].supersedes is None
    closed, new = store.alert(first.alert_id), store.alert(changes[1].after.alert_id)
    assert closed is not None and new is not None
    assert (closed.status, closed.hit_count, closed.version, closed.last_hit_ts) == (
        "closed", 2, 3, "2026-12-01T09:30:00.000Z")
    assert [(e.action, e.version) for e in store.audit_of(first.alert_id)] == [("opened", 1), ("verdict", 2),
                                                                              ("hit", 3)]
    assert (new.status, new.hit_count, new.version, new.severity, new.rules) == (
        "open", 3, 3, "critical", ("r-new", "velocity-1m"))
    assert (new.first_hit_ts, new.last_hit_ts) == ("2026-12-01T09:45:00.000Z", "2026-12-01T10:30:00.000Z")
    assert [(e.action, e.version) for e in store.audit_of(new.alert_id)] == [("opened", 1), ("hit", 2), ("hit", 3)]
    assert [h.hit_id for h in store.hits_of(new.alert_id)] == ["h0005", "h0003", "h0006"]  # by time
    assert new == changes[-1].after
    (due,) = store.due_notifications(NOW, 10)  # the new critical alert, as it was opened
    assert due.alert_id == new.alert_id and due.payload["alert"] == changes[1].after.to_dict()
    assert due.payload["alert"]["hit_count"] == 1
    # the account's latest alert is the new one: a later hit joins it
    store.record_hits([hit(7, "acct", ts="2026-12-01T09:10:00.000Z")], POLICY, NOW)
    assert store.alert(new.alert_id).hit_count == 4  # type: ignore[union-attr]


@pytest.mark.parametrize("path", ["batch", "one change"])
def test_a_hit_joining_a_quiet_alert_is_stale_once_another_writer_opened_the_next_one(store: AlertStore,
                                                                                       path: str) -> None:
    store.record_hits([hit(1, "acct", ts="2026-12-01T09:00:00.000Z")], POLICY, NOW)
    (first,) = store.list_alerts(AlertFilter(), 10)
    store.decide(first.alert_id, "legit", None, "ana", POLICY, NOW)  # quiet until 10:00
    late = hit(2, "acct", ts="2026-12-01T09:30:00.000Z")
    latest = store._latest_alerts(["acct"])["acct"]
    changes = apply_hits(latest, [late], POLICY, NOW)  # this writer: the late hit joins the closed alert
    assert changes[0].after.alert_id == first.alert_id
    (opened,) = store.record_hits([hit(3, "acct", ts="2026-12-01T10:00:00.000Z")], POLICY, NOW)  # another writer
    assert opened.audit.action == "opened" and store.alert(first.alert_id) == latest  # the closed alert unchanged
    with pytest.raises(StaleAlertError):
        if path == "batch":
            store._commit_changes(changes)
        else:
            store._commit(changes[0])
    assert store.alert(first.alert_id) == latest and [h.hit_id for h in store.hits_of(first.alert_id)] == ["h0001"]
    (again,) = store.record_hits([late], POLICY, NOW)  # computed again: it joins the account's latest alert
    assert again.after.alert_id == opened.after.alert_id and again.after.hit_count == 2


def test_a_partly_recorded_batch_redelivered_counts_only_its_new_hits(store: AlertStore) -> None:
    store.record_hits([hit(1), hit(2), hit(3, "b")], POLICY, NOW)
    again = [hit(2), hit(4), hit(1), hit(5, "b"), hit(3, "b"), hit(6), hit(4)]
    changes = store.record_hits(again, POLICY, NOW)
    assert [(c.hit.hit_id if c.hit else None, c.audit.version) for c in changes] == [
        ("h0004", 3), ("h0005", 2), ("h0006", 4)]
    assert store.record_hits(again, POLICY, NOW) == []
    for account, count in (("a1", 4), ("b", 2)):
        (alert,) = store.list_alerts(AlertFilter(account=account), 10)
        assert alert.hit_count == count == len(store.hits_of(alert.alert_id))
        assert [e.version for e in store.audit_of(alert.alert_id)] == list(range(1, count + 1))


class Counting:
    """A client counting the requests it makes, by operation."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self._client, name)


@pytest.mark.integration
def test_dynamodb_writes_an_account_s_changes_in_transactions_of_at_most_100_items(moto_url: str) -> None:
    from chalicelib.stores.alerts_dynamodb import DynamoDBAlertStore, create_alert_table

    client = Counting(contract.dynamodb_client(moto_url))
    table = f"alerts-{uuid.uuid4().hex[:8]}"
    create_alert_table(client, table)
    store = DynamoDBAlertStore(client, table)
    client.calls.clear()
    batch = [hit(n, "busy") for n in range(1, 41)] + [hit(n, f"acct-{n}") for n in range(41, 51)]
    assert len(store.record_hits(batch, POLICY, NOW)) == 50
    # 40 changes of one account: 122 items, so two transactions (32 changes, then 8); one each for the others
    assert client.calls["transact_write_items"] == 2 + 10
    assert client.calls["batch_get_item"] == 2  # recorded hits, the accounts' pointers (none has an alert yet)
    assert client.calls["get_item"] == 0
    (alert,) = store.list_alerts(AlertFilter(account="busy"), 10)
    assert alert.hit_count == 40 and [e.version for e in store.audit_of(alert.alert_id)] == list(range(1, 41))
    client.calls.clear()
    store.record_hits([hit(n, "busy") for n in range(51, 61)], POLICY, NOW)
    assert (client.calls["transact_write_items"], client.calls["batch_get_item"]) == (1, 3)  # + the alert
    assert store.alert(alert.alert_id).hit_count == 50  # type: ignore[union-attr]
