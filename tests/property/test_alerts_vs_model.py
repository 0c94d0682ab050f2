"""The alert store against a brute-force model, as a Hypothesis state machine: hits of a few
accounts arrive in batches (some redelivered, some repeated inside a batch), investigators close
alerts with verdicts, and after every step the store's alerts equal the model's - one open alert
per account, every hit counted exactly once, the quiet period honoured."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from chalicelib.alerts import AlertFilter, AlertHit, AlertPolicy
from chalicelib.entities import iso_ms
from chalicelib.stores.alerts_sqlite import SQLiteAlertStore

QUIET = timedelta(seconds=30)
POLICY = AlertPolicy(quiet_period=QUIET)
START = datetime(2026, 12, 1, tzinfo=UTC)
ACCOUNTS = ["a", "b", "c"]
NOW = "2026-12-02T00:00:00.000Z"


def ts(seconds: int) -> str:
    return iso_ms(START + timedelta(seconds=seconds))


class AlertsVsModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory(prefix="alerts-model-")
        self.store = SQLiteAlertStore(Path(self.directory.name) / "alerts.sqlite")
        self.delivered: list[AlertHit] = []
        self.clock = 0
        self.seen: set[str] = set()
        #: account -> its alerts in order: {"hits": set, "status", "last": int, "quiet_until": int | None}
        self.model: dict[str, list[dict[str, Any]]] = {a: [] for a in ACCOUNTS}

    def teardown(self) -> None:
        self.store.close()
        self.directory.cleanup()

    def _model_hit(self, hit: AlertHit, at: int) -> None:
        if hit.hit_id in self.seen:
            return
        self.seen.add(hit.hit_id)
        alerts = self.model[hit.account_id]
        latest = alerts[-1] if alerts else None
        if latest is not None and (latest["status"] != "closed" or at < latest["quiet_until"]):
            latest["hits"].add(hit.hit_id)
            latest["last"] = max(latest["last"], at)
        else:
            alerts.append({"hits": {hit.hit_id}, "status": "open", "last": at, "quiet_until": None})

    @rule(accounts=st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=6),
          gaps=st.lists(st.sampled_from([0, 0, 5, 15, 29, 30, 31]), min_size=6, max_size=6),  # near QUIET
          repeat=st.booleans())
    def new_hits(self, accounts: list[str], gaps: list[int], repeat: bool) -> None:
        batch, times = [], {}
        for account, gap in zip(accounts, gaps, strict=False):
            self.clock += gap
            hit = AlertHit(f"h{len(self.delivered)}", account, "r", "medium", ts(self.clock), f"e{len(self.delivered)}")
            self.delivered.append(hit)
            times[hit.hit_id] = self.clock
            batch.append(hit)
        if repeat:
            batch.append(batch[0])  # the same hit twice in one batch
        self.store.record_hits(batch, POLICY, NOW)
        for hit in batch:
            self._model_hit(hit, times[hit.hit_id])

    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        if self.delivered:
            again = data.draw(st.lists(st.sampled_from(self.delivered), min_size=1, max_size=5))
            assert self.store.record_hits(again, POLICY, NOW) == []  # nothing new, nothing changed

    @rule(account=st.sampled_from(ACCOUNTS), verdict=st.sampled_from(["fraud", "legit", "unsure"]))
    def decide(self, account: str, verdict: str) -> None:
        latest = self.model[account][-1] if self.model[account] else None
        if latest is None or latest["status"] == "closed":
            return
        (alert,) = self.store.list_alerts(AlertFilter(account=account, status="open"), 5)
        self.store.decide(alert.alert_id, verdict, None, "ana", POLICY, NOW)
        latest["status"] = "closed"
        latest["quiet_until"] = latest["last"] + int(QUIET.total_seconds())

    @invariant()
    def store_equals_model(self) -> None:
        for account in ACCOUNTS:
            stored = self.store.list_alerts(AlertFilter(account=account), 1000)
            expected = self.model[account]
            assert len(stored) == len(expected)
            assert sum(a.status != "closed" for a in stored) <= 1  # one open alert per account
            got = sorted((tuple(sorted(h.hit_id for h in self.store.hits_of(a.alert_id))), a.status, a.hit_count,
                          a.last_hit_ts) for a in stored)
            want = sorted((tuple(sorted(m["hits"])), m["status"], len(m["hits"]), ts(m["last"])) for m in expected)
            assert got == want


AlertsVsModel.TestCase.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)
TestAlertsVsModel = AlertsVsModel.TestCase
