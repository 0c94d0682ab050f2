"""Alerts in one DynamoDB table (on-demand; infra/fraud-infra.yaml), through an injected boto3
client (boto3 itself is imported only by `wiring`, on the AWS path).

Items (`pk`, `sk`):

| pk                | sk                  | what                                                      |
|-------------------|---------------------|-----------------------------------------------------------|
| ALERT#id          | ALERT               | the alert (`body` JSON, `version`); GSI `inbox` on        |
|                   |                     | (`inbox` = "alerts", `inbox_order` = rank#last_hit#id)    |
| ALERT#id          | AUDIT#version       | one audit entry                                           |
| ALERT#id          | HIT#ts#hit_id       | one of its hits                                           |
| HIT#hit_id        | HIT                 | "this hit is recorded" (`alert_id`)                       |
| ACCOUNT#account   | LATEST              | the account's latest alert (`alert_id`)                   |
| OUTBOX            | alert id            | a notification (`status`, `next_attempt_at`, `body`)      |

A change is one `TransactWriteItems` whose conditions are the optimistic checks: the alert's
version (or its absence), the account pointer, the hit marker's absence. A cancelled transaction
tells which failed: the hit marker (another writer recorded the hit) or the rest (stale: compute
again). The inbox is one GSI partition read newest-first with filters: alerts are made by people
deciding them, so their number stays far below what one partition serves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from chalicelib.alerts import Alert, AlertChange, AlertFilter, AlertHit, AuditEntry, Notification
from chalicelib.stores.alerts import AlertStore, HitRecordedError, OrderKey, StaleAlertError, notification_for
from chalicelib.stores.exceptions import StoreError, TransientStoreError

INBOX_INDEX = "inbox"
TRANSIENT_CODES = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                   "InternalServerError", "ServiceUnavailable", "TransactionInProgressException"}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def inbox_order(alert: Alert) -> str:
    return f"{alert.severity_rank}#{alert.last_hit_ts}#{alert.alert_id}"


class DynamoDBAlertStore(AlertStore):
    backend: ClassVar[str] = "dynamodb"

    def __init__(self, client: Any, table: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client
        self.table = table

    def _call(self, operation: str, **params: Any) -> Any:
        try:
            return getattr(self.client, operation)(TableName=self.table, **params)
        except Exception as exc:
            code = _error_code(exc)
            if code in TRANSIENT_CODES or type(exc).__name__ in ("EndpointConnectionError", "ConnectTimeoutError",
                                                                 "ReadTimeoutError", "ConnectionClosedError"):
                raise TransientStoreError(f"alert table {self.table} busy or unreachable: {code or exc}") from exc
            raise StoreError(f"alert table {self.table}: {operation} failed: {code or exc}") from exc

    def _recorded_hits(self, hit_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        ids = list(dict.fromkeys(hit_ids))
        for start in range(0, len(ids), 100):
            keys: list[dict[str, Any]] = [{"pk": _s(f"HIT#{h}"), "sk": _s("HIT")} for h in ids[start:start + 100]]
            for _attempt in range(10):
                try:
                    answer = self.client.batch_get_item(RequestItems={self.table: {
                        "Keys": keys, "ProjectionExpression": "pk"}})
                except Exception as exc:
                    raise TransientStoreError(f"alert table {self.table}: batch_get_item failed: "
                                              f"{_error_code(exc) or exc}") from exc
                found.update(item["pk"]["S"][len("HIT#"):] for item in answer["Responses"].get(self.table, []))
                keys = answer.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
                if not keys:
                    break
            else:
                raise TransientStoreError(f"alert table {self.table}: reads left unprocessed; try again")
        return found

    def _latest_alert(self, account_id: str) -> Alert | None:
        pointer = self._call("get_item", Key={"pk": _s(f"ACCOUNT#{account_id}"), "sk": _s("LATEST")},
                             ConsistentRead=True).get("Item")
        return None if pointer is None else self.alert(pointer["alert_id"]["S"])

    def _commit(self, change: AlertChange) -> None:
        after, table = change.after, self.table
        alert_item = {"pk": _s(f"ALERT#{after.alert_id}"), "sk": _s("ALERT"), "body": _s(json.dumps(after.to_dict())),
                      "version": _n(after.version), "inbox": _s("alerts"), "inbox_order": _s(inbox_order(after))}
        items: list[dict[str, Any]] = []
        if change.hit is not None:
            hit = change.hit
            items.append({"Put": {"TableName": table, "Item": {"pk": _s(f"HIT#{hit.hit_id}"), "sk": _s("HIT"),
                                                                "alert_id": _s(after.alert_id)},
                                  "ConditionExpression": "attribute_not_exists(pk)"}})
            items.append({"Put": {"TableName": table, "Item": {
                "pk": _s(f"ALERT#{after.alert_id}"), "sk": _s(f"HIT#{hit.ts}#{hit.hit_id}"),
                "body": _s(json.dumps(hit.to_dict()))}}})
        if change.before is None:
            items.append({"Put": {"TableName": table, "Item": alert_item,
                                  "ConditionExpression": "attribute_not_exists(pk)"}})
            pointer: dict[str, Any] = {"TableName": table, "Item": {
                "pk": _s(f"ACCOUNT#{after.account_id}"), "sk": _s("LATEST"), "alert_id": _s(after.alert_id)}}
            if change.supersedes is None:
                pointer["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                pointer["ConditionExpression"] = "alert_id = :previous"
                pointer["ExpressionAttributeValues"] = {":previous": _s(change.supersedes)}
            items.append({"Put": pointer})
        else:
            items.append({"Put": {"TableName": table, "Item": alert_item, "ConditionExpression": "version = :v",
                                  "ExpressionAttributeValues": {":v": _n(change.before.version)}}})
        items.append({"Put": {"TableName": table, "Item": {
            "pk": _s(f"ALERT#{after.alert_id}"), "sk": _s(f"AUDIT#{change.audit.version:010d}"),
            "body": _s(json.dumps(change.audit.to_dict()))}, "ConditionExpression": "attribute_not_exists(pk)"}})
        if change.notify:
            items.append({"Put": {"TableName": table, "Item": self._outbox_item(notification_for(change)),
                                  "ConditionExpression": "attribute_not_exists(pk)"}})
        try:
            self.client.transact_write_items(TransactItems=items)
        except Exception as exc:
            code = _error_code(exc)
            if code != "TransactionCanceledException":
                if code in TRANSIENT_CODES:
                    raise TransientStoreError(f"alert table {table} busy: {code}") from exc
                raise StoreError(f"alert table {table}: writing an alert failed: {code or exc}") from exc
            reasons = [r.get("Code") for r in getattr(exc, "response", {}).get("CancellationReasons", [])]
            if change.hit is not None and (reasons[:1] == ["ConditionalCheckFailed"]
                                           or (not reasons and self._recorded_hits([change.hit.hit_id]))):
                raise HitRecordedError(change.hit.hit_id) from exc
            # a failed version or pointer check, or a conflicting transaction: computed again after a wait
            raise StaleAlertError(after.alert_id) from exc

    def alert(self, alert_id: str) -> Alert | None:
        item = self._call("get_item", Key={"pk": _s(f"ALERT#{alert_id}"), "sk": _s("ALERT")},
                          ConsistentRead=True).get("Item")
        return None if item is None else Alert.from_dict(json.loads(item["body"]["S"]))

    def list_alerts(self, where: AlertFilter, limit: int, after: OrderKey | None = None) -> list[Alert]:
        out: list[Alert] = []
        params: dict[str, Any] = {"IndexName": INBOX_INDEX, "ScanIndexForward": False,
                                  "KeyConditionExpression": "inbox = :inbox",
                                  "ExpressionAttributeValues": {":inbox": _s("alerts")}}
        if after is not None:
            params["KeyConditionExpression"] += " AND inbox_order < :after"
            params["ExpressionAttributeValues"][":after"] = _s(f"{after[0]}#{after[1]}#{after[2]}")
        while len(out) < limit:
            answer = self._call("query", **params)
            for item in answer.get("Items", []):
                alert = Alert.from_dict(json.loads(item["body"]["S"]))
                if where.matches(alert):
                    out.append(alert)
            if "LastEvaluatedKey" not in answer:
                break
            params["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return out[:limit]

    def _items(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": _s(pk)},
                                  "ConsistentRead": True}
        if prefix:
            params["KeyConditionExpression"] += " AND begins_with(sk, :prefix)"
            params["ExpressionAttributeValues"][":prefix"] = _s(prefix)
        items: list[dict[str, Any]] = []
        while True:
            answer = self._call("query", **params)
            items.extend(answer.get("Items", []))
            if "LastEvaluatedKey" not in answer:
                return items
            params["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def hits_of(self, alert_id: str) -> list[AlertHit]:
        hits = [AlertHit(**json.loads(i["body"]["S"])) for i in self._items(f"ALERT#{alert_id}", "HIT#")]
        return sorted(hits, key=lambda h: (h.ts, h.hit_id))

    def audit_of(self, alert_id: str) -> list[AuditEntry]:
        return [AuditEntry(**json.loads(i["body"]["S"])) for i in self._items(f"ALERT#{alert_id}", "AUDIT#")]

    def due_notifications(self, now: str, limit: int) -> list[Notification]:
        due = [Notification(**json.loads(i["body"]["S"])) for i in self._items("OUTBOX", "")]
        due = [n for n in due if n.status == "pending" and n.next_attempt_at <= now]
        return sorted(due, key=lambda n: (n.next_attempt_at, n.alert_id))[:limit]

    def save_notification(self, notification: Notification) -> None:
        self._call("put_item", Item=self._outbox_item(notification))

    def notification(self, alert_id: str) -> Notification | None:
        item = self._call("get_item", Key={"pk": _s("OUTBOX"), "sk": _s(alert_id)}, ConsistentRead=True).get("Item")
        return None if item is None else Notification(**json.loads(item["body"]["S"]))

    @staticmethod
    def _outbox_item(n: Notification) -> dict[str, Any]:
        body = {"alert_id": n.alert_id, "payload": n.payload, "attempts": n.attempts,
                "next_attempt_at": n.next_attempt_at, "status": n.status, "last_error": n.last_error}
        return {"pk": _s("OUTBOX"), "sk": _s(n.alert_id), "status": _s(n.status),
                "next_attempt_at": _s(n.next_attempt_at), "body": _s(json.dumps(body))}


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def session_name(actor: str) -> str:
    """An STS role session name for the actor (CloudTrail shows it): [\\w+=,.@-], 2 to 64 characters."""
    cleaned = "".join(c if c.isalnum() or c in "+=,.@-_" else "-" for c in actor.rsplit("/", 1)[-1])
    return (cleaned or "investigator")[:64].ljust(2, "-")


def assumed_role_client(sts_client: Any, role_arn: str, actor: str, region: str) -> Any:
    """A DynamoDB client acting as `role_arn`, its session named after the actor (15 minutes: one
    change). The read-only API role holds no write permission of its own."""
    import boto3

    try:
        credentials = sts_client.assume_role(RoleArn=role_arn, RoleSessionName=session_name(actor),
                                             DurationSeconds=900)["Credentials"]
    except Exception as exc:
        code = _error_code(exc)
        if code in TRANSIENT_CODES or code == "Throttling":
            raise TransientStoreError(f"cannot assume the alert-writer role now: {code}") from exc
        raise StoreError(f"cannot assume the alert-writer role {role_arn}: {code or type(exc).__name__}") from exc
    return boto3.client("dynamodb", region_name=region, aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


def create_alert_table(client: Any, table: str) -> None:
    """The table as infra/fraud-infra.yaml declares it (for tests and local moto runs)."""
    client.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "inbox", "inbox_order")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": INBOX_INDEX, "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "inbox", "KeyType": "HASH"},
                                               {"AttributeName": "inbox_order", "KeyType": "RANGE"}]}])
