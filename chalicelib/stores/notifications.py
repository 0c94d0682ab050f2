"""Publishing new alerts: a webhook (locally) signed the way Stripe signs its events, or an SNS
topic (in AWS). A publisher raises `NotificationError` when a delivery failed; the outbox
(`chalicelib.inbox`) decides when to try again.

Webhook signature: header `Fraud-Signature: t=<unix seconds>,v1=<hex>` where
`hex = HMAC-SHA256(secret, "<t>.<raw body>")`. A receiver recomputes it over the raw body, compares
in constant time (`verify_signature`) and rejects a timestamp older than its tolerance, so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from chalicelib.stores.exceptions import StoreError

SIGNATURE_HEADER = "Fraud-Signature"
DEFAULT_TOLERANCE_S = 300


class NotificationError(StoreError):
    """A notification was not delivered (the message says why; never the secret)."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, now: int,
                     tolerance_s: int = DEFAULT_TOLERANCE_S) -> bool:
    """True when `header` signs `body` with `secret` and its timestamp is within the tolerance."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class Publisher(ABC):
    @abstractmethod
    def publish(self, payload: dict[str, Any]) -> None:
        """Deliver one notification; raise NotificationError if it was not delivered."""


class WebhookPublisher(Publisher):
    """POST the payload as JSON, signed; any 2xx answer is a delivery."""

    def __init__(self, url: str, secret: str, *, timeout_s: float = 3.0,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.url = url
        self._secret = secret
        self.timeout_s = timeout_s
        self._clock = clock or time.time

    def publish(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, int(self._clock()), body)})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            raise NotificationError(f"webhook answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise NotificationError(f"webhook unreachable: {getattr(exc, 'reason', exc)}") from None
        if not 200 <= status < 300:
            raise NotificationError(f"webhook answered {status}")


class SnsPublisher(Publisher):
    """Publish to an SNS topic through an injected boto3 client."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    def publish(self, payload: dict[str, Any]) -> None:
        alert = payload.get("alert", {})
        try:
            self.client.publish(TopicArn=self.topic_arn, Message=json.dumps(payload, separators=(",", ":")),
                                Subject=f"fraud alert: {alert.get('severity', '')} {alert.get('account_id', '')}"[:99])
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
            raise NotificationError(f"SNS publish to {self.topic_arn} failed: {code or type(exc).__name__}") from None
