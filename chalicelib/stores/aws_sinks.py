"""Sinks for the AWS path: poison records to an SQS dead-letter queue, hits to the log
(CloudWatch) beside their graph edges in Neptune."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from chalicelib.events import PoisonRecord
from chalicelib.hits import Hit
from chalicelib.stores.base import DeadLetterSink, HitSink
from chalicelib.stores.exceptions import StoreError, TransientStoreError

MAX_BATCH = 10  # SendMessageBatch entries per call
MAX_BODY = 250_000  # SQS allows 256 KiB per message

hit_log = logging.getLogger("chalicelib.hits")


class SqsDeadLetterSink(DeadLetterSink):
    """One message per poison record, with the reason and the raw bytes (base64). A standard
    queue may deliver a message twice: consumers deduplicate by `record_id`."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def write(self, poison: Sequence[PoisonRecord]) -> list[str]:
        letters = [p.to_dead_letter() for p in poison]
        for start in range(0, len(letters), MAX_BATCH):
            chunk = letters[start:start + MAX_BATCH]
            entries = [{"Id": str(i), "MessageBody": _body(letter)} for i, letter in enumerate(chunk)]
            for _attempt in range(3):
                try:
                    response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
                except Exception as exc:
                    raise TransientStoreError(f"dead-letter queue unavailable: {exc}") from exc
                failed = {f["Id"] for f in response.get("Failed", [])}
                entries = [e for e in entries if e["Id"] in failed]
                if not entries:
                    break
            else:
                raise TransientStoreError(f"dead-letter queue refused {len(entries)} messages after 3 attempts")
        return [letter["record_id"] for letter in letters]


def _body(letter: dict[str, Any]) -> str:
    body = json.dumps(letter, separators=(",", ":"))
    if len(body) > MAX_BODY:
        letter = {**letter, "data_base64": letter["data_base64"][:MAX_BODY // 2], "data_text": None, "truncated": True}
        body = json.dumps(letter, separators=(",", ":"))
    if len(body) > MAX_BODY:
        raise StoreError("a dead letter does not fit an SQS message even truncated")
    return body


class LogHitSink(HitSink):
    """Each hit as one JSON log line (CloudWatch Logs in Lambda). Idempotency lives in the graph
    (hit edges upsert by hit_id); a redelivered batch may log a hit twice, with the same hit_id."""

    def write(self, hits: Sequence[Hit]) -> list[str]:
        for hit in hits:
            hit_log.warning(f'{{"hit":{hit.json_line()}}}')  # = json.dumps({"hit": hit.to_dict()}, ...)
        return [h.hit_id for h in hits]
