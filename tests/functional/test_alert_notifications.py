"""Publishing new severe alerts: the webhook's Stripe-style signature checked by a real receiver on
loopback, the outbox's retries by the retry policy across batches (never inside one), a failing
webhook that neither fails nor holds up a batch, and giving up after the policy's last attempt."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chalicelib.alerts import AlertFilter
from chalicelib.inbox import AlertInbox
from chalicelib.pipeline import Pipeline
from chalicelib.retry import Backoff
from chalicelib.rules import StaticRulesSource, load_rules_file
from chalicelib.stores import JsonLinesDeadLetterSink, JsonLinesHitSink, SQLiteGraphStore, SQLiteTimeSeriesStore
from chalicelib.stores.alerts_sqlite import SQLiteAlertStore
from chalicelib.stores.notifications import SIGNATURE_HEADER, WebhookPublisher, sign, verify_signature
from fraudtools.cli.runner import stream_through
from fraudtools.record_files import records_from_lines
from tests.conftest import PROJECT, SEED_SAMPLE

SECRET = "whsec_test"


class Receiver:
    """A webhook receiver on 127.0.0.1 answering the statuses queued in `answers` (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_and_is_checked() -> None:
    body = b'{"a":1}'
    header = sign(SECRET, 1700000000, body)
    assert header == "t=1700000000,v1=" + hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert verify_signature(SECRET, header, body, now=1700000100)
    assert not verify_signature(SECRET, header, body + b" ", now=1700000100)  # body changed
    assert not verify_signature("other", header, body, now=1700000100)  # wrong key
    assert not verify_signature(SECRET, header, body, now=1700000000 + 301)  # replayed too late
    assert not verify_signature(SECRET, "t=x,v1=00", body, now=1700000000)


def replay_sample(tmp_path: Path, inbox: AlertInbox) -> Pipeline:
    with SEED_SAMPLE.open("rb") as handle:
        records = list(records_from_lines(handle, "auto"))
    pipeline = Pipeline(StaticRulesSource(load_rules_file(PROJECT / "rules.yaml")),
                        SQLiteTimeSeriesStore(tmp_path / "ts.sqlite"), JsonLinesHitSink(tmp_path / "hits.jsonl"),
                        JsonLinesDeadLetterSink(tmp_path / "dl.jsonl"), graph=SQLiteGraphStore(tmp_path / "g.sqlite"),
                        alerts=inbox)
    stream_through(pipeline, records, 100)
    return pipeline


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_new_severe_alerts_reach_the_webhook_signed_once_each(tmp_path: Path, receiver: Receiver) -> None:
    inbox = AlertInbox(SQLiteAlertStore(tmp_path / "alerts.sqlite"), publisher=WebhookPublisher(receiver.url, SECRET))
    pipeline = replay_sample(tmp_path, inbox)
    try:
        severe = [a for a in inbox.store.list_alerts(AlertFilter(), 500) if a.severity in ("high", "critical")]
        assert severe and len(severe) < len(inbox.store.list_alerts(AlertFilter(), 500))
        # one batch publishes at most NOTIFY_PER_BATCH; the rest follow with later batches
        while inbox.store.due_notifications("9999", 1):
            inbox.publish_due()
        published = [json.loads(body) for _, body in receiver.requests]
        assert sorted(p["alert"]["alert_id"] for p in published) == sorted(a.alert_id for a in severe)
        for headers, body in receiver.requests:
            timestamp = int(headers[SIGNATURE_HEADER].split(",")[0][2:])
            assert verify_signature(SECRET, headers[SIGNATURE_HEADER], body, now=timestamp)
        assert all(inbox.store.notification(a.alert_id).status == "sent" for a in severe)  # type: ignore[union-attr]
    finally:
        pipeline.close()


def test_a_failing_webhook_fails_no_batch_and_is_retried_by_the_policy(tmp_path: Path, receiver: Receiver) -> None:
    receiver.answers = [500] * 1000  # the receiver is down for the whole replay
    clock = Clock()
    inbox = AlertInbox(SQLiteAlertStore(tmp_path / "alerts.sqlite"), publisher=WebhookPublisher(receiver.url, SECRET),
                       clock=clock, backoff=Backoff(attempts=3, base_delay_s=60, max_delay_s=600),
                       rng=random.Random(1))
    pipeline = replay_sample(tmp_path, inbox)  # stream_through raises if a batch keeps failing
    try:
        hits = [json.loads(line) for line in (tmp_path / "hits.jsonl").read_text().splitlines()]
        assert sum(a.hit_count for a in inbox.store.list_alerts(AlertFilter(), 500)) == sum(
            h["mode"] == "enforce" for h in hits)
        tried = {json.loads(body)["alert"]["alert_id"] for _, body in receiver.requests}
        assert tried  # attempted after batches ...
        first = inbox.store.notification(sorted(tried)[0])
        assert first is not None and (first.status, first.attempts) == ("pending", 1)
        assert "500" in (first.last_error or "")
        delay = first.next_attempt_at
        assert delay > "2026-12-01T10:00:00.000Z"  # ... and scheduled later, not retried inside the batch
        assert len(receiver.requests) == len(tried)
        assert len(receiver.requests) <= 6  # one failed attempt per batch at most: 550 records in 6 batches
        receiver.answers = [500] * 1000
        for _ in range(3):
            clock.now += timedelta(minutes=11)  # past the policy's longest wait
            while inbox.store.due_notifications(inbox.now(), 1):
                inbox.publish_due()
        given_up = inbox.store.notification(first.alert_id)
        assert given_up is not None and (given_up.status, given_up.attempts) == ("failed", 3)
        assert inbox.store.due_notifications("9999", 100) == []
    finally:
        pipeline.close()


def test_an_unreachable_webhook_is_kept_pending(tmp_path: Path) -> None:
    inbox = AlertInbox(SQLiteAlertStore(tmp_path / "alerts.sqlite"),
                       publisher=WebhookPublisher("http://127.0.0.1:9/hook", SECRET, timeout_s=1), clock=Clock(),
                       rng=random.Random(3))
    pipeline = replay_sample(tmp_path, inbox)
    try:
        pending = inbox.store.due_notifications("9999", 500)
        assert pending and all(n.attempts <= 1 and n.status == "pending" for n in pending)
        tried = [n for n in pending if n.attempts == 1]
        assert 1 <= len(tried) <= 6  # after each of the 6 batches, tries stop at the first failure
        assert all("unreachable" in (n.last_error or "") for n in tried)
    finally:
        pipeline.close()
