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

from chalicelib.alerts import Alert, AlertChange, AlertFilter, AlertHit, AuditEntry, Notification, net_changes
from chalicelib.stores.alerts import AlertStore, HitRecordedError, OrderKey, StaleAlertError, notification_for
from chalicelib.stores.exceptions import StoreError, TransientStoreError

INBOX_INDEX = "inbox"
#: items of one TransactWriteItems (DynamoDB's limit)
TRANSACTION_ITEMS = 100
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

    def _get_many(self, keys: Sequence[dict[str, Any]], projection: str | None = None) -> list[dict[str, Any]]:
        """The items of `keys` that exist (strongly consistent), by BatchGetItem: 100 keys a
        request, unprocessed keys asked again."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {"Keys": list(keys[start:start + 100]), "ConsistentRead": True}
            if projection is not None:
                request["ProjectionExpression"] = projection
            for _attempt in range(10):
                try:
                    answer = self.client.batch_get_item(RequestItems={self.table: request})
                except Exception as exc:
                    raise TransientStoreError(f"alert table {self.table}: batch_get_item failed: "
                                              f"{_error_code(exc) or exc}") from exc
                found.extend(answer["Responses"].get(self.table, []))
                request["Keys"] = answer.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
                if not request["Keys"]:
                    break
            else:
                raise TransientStoreError(f"alert table {self.table}: reads left unprocessed; try again")
        return found

    def _recorded_hits(self, hits: Sequence[AlertHit]) -> set[str]:
        return self._recorded_ids([h.hit_id for h in hits])

    def _recorded_ids(self, hit_ids: Sequence[str]) -> set[str]:
        keys = [{"pk": _s(f"HIT#{h}"), "sk": _s("HIT")} for h in dict.fromkeys(hit_ids)]
        return {item["pk"]["S"][len("HIT#"):] for item in self._get_many(keys, "pk")}

    def _latest_alert(self, account_id: str) -> Alert | None:
        pointer = self._call("get_item", Key={"pk": _s(f"ACCOUNT#{account_id}"), "sk": _s("LATEST")},
                             ConsistentRead=True).get("Item")
        return None if pointer is None else self.alert(pointer["alert_id"]["S"])

    def _latest_alerts(self, account_ids: Sequence[str]) -> dict[str, Alert]:
        """Two batched reads: the accounts' pointers, then the alerts they name."""
        pointers = {item["pk"]["S"][len("ACCOUNT#"):]: item["alert_id"]["S"] for item in self._get_many(
            [{"pk": _s(f"ACCOUNT#{a}"), "sk": _s("LATEST")} for a in dict.fromkeys(account_ids)])}
        if not pointers:
            return {}
        alerts = {item["pk"]["S"][len("ALERT#"):]: Alert.from_dict(json.loads(item["body"]["S"])) for item in
                  self._get_many([{"pk": _s(f"ALERT#{i}"), "sk": _s("ALERT")} for i in set(pointers.values())])}
        return {account: alerts[alert_id] for account, alert_id in pointers.items() if alert_id in alerts}

    def _commit_changes(self, changes: Sequence[AlertChange]) -> int:
        """As many of one account's changes as one transaction holds (TRANSACTION_ITEMS items), or
        one assignment or verdict (`_commit`): a hit marker (first, so a cancellation tells which
        hit was recorded), a hit item and an audit entry per change, each alert touched once (its
        state after its last change, over the version before its first), the account pointer -
        put when a new alert is opened, else checked when hits join the latest alert (over the
        pointer the changes were computed from: a hit joining a closed alert's quiet period must
        not land after another writer opened the account's next alert) - and the outbox entries."""
        count, size = 0, 1  # the account pointer's item: put or checked
        alerts: set[str] = set()
        for change in changes:
            grow = 3 + change.notify + (change.after.alert_id not in alerts)
            if size + grow > TRANSACTION_ITEMS and count:
                break
            count, size = count + 1, size + grow
            alerts.add(change.after.alert_id)
        written = changes[:count]
        hits = [c.hit for c in written if c.hit is not None]  # none for an assignment or a verdict
        table, first = self.table, written[0]
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": table, "Item": {"pk": _s(f"HIT#{c.hit.hit_id}"), "sk": _s("HIT"),
                                                  "alert_id": _s(c.after.alert_id)},
                     "ConditionExpression": "attribute_not_exists(pk)"}} for c in written if c.hit is not None]
        items += [{"Put": {"TableName": table, "Item": {
            "pk": _s(f"ALERT#{c.after.alert_id}"), "sk": _s(f"HIT#{c.hit.ts}#{c.hit.hit_id}"),
            "body": _s(json.dumps(c.hit.to_dict()))}}} for c in written if c.hit is not None]
        newest: Alert | None = None
        for before, after in net_changes(written):
            item = self._alert_item(after)
            if before is None:
                newest = after
                items.append({"Put": {"TableName": table, "Item": item,
                                      "ConditionExpression": "attribute_not_exists(pk)"}})
            else:
                items.append({"Put": {"TableName": table, "Item": item, "ConditionExpression": "version = :v",
                                      "ExpressionAttributeValues": {":v": _n(before.version)}}})
        if newest is not None:
            previous = first.before.alert_id if first.before is not None else first.supersedes
            items.append({"Put": self._pointer_put(newest, previous)})
        elif hits and first.before is not None:
            items.append({"ConditionCheck": {
                "TableName": table, "Key": {"pk": _s(f"ACCOUNT#{first.before.account_id}"), "sk": _s("LATEST")},
                "ConditionExpression": "alert_id = :latest",
                "ExpressionAttributeValues": {":latest": _s(first.before.alert_id)}}})
        items += [{"Put": {"TableName": table, "Item": {
            "pk": _s(f"ALERT#{c.after.alert_id}"), "sk": _s(f"AUDIT#{c.audit.version:010d}"),
            "body": _s(json.dumps(c.audit.to_dict()))}, "ConditionExpression": "attribute_not_exists(pk)"}}
            for c in written]
        items += [{"Put": {"TableName": table, "Item": self._outbox_item(notification_for(c)),
                           "ConditionExpression": "attribute_not_exists(pk)"}} for c in written if c.notify]
        self._transact(items, [h.hit_id for h in hits], first.after.alert_id)
        return count

    def _alert_item(self, alert: Alert) -> dict[str, Any]:
        return {"pk": _s(f"ALERT#{alert.alert_id}"), "sk": _s("ALERT"), "body": _s(json.dumps(alert.to_dict())),
                "version": _n(alert.version), "inbox": _s("alerts"), "inbox_order": _s(inbox_order(alert))}

    def _pointer_put(self, alert: Alert, previous: str | None) -> dict[str, Any]:
        """The account's latest-alert pointer to the new `alert`, only over `previous`."""
        pointer: dict[str, Any] = {"TableName": self.table, "Item": {
            "pk": _s(f"ACCOUNT#{alert.account_id}"), "sk": _s("LATEST"), "alert_id": _s(alert.alert_id)}}
        if previous is None:
            pointer["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            pointer["ConditionExpression"] = "alert_id = :previous"
            pointer["ExpressionAttributeValues"] = {":previous": _s(previous)}
        return pointer

    def _transact(self, items: list[dict[str, Any]], hit_ids: Sequence[str], alert_id: str) -> None:
        """One TransactWriteItems whose first len(hit_ids) items are those hits' markers."""
        try:
            self.client.transact_write_items(TransactItems=items)
        except Exception as exc:
            code = _error_code(exc)
            if code != "TransactionCanceledException":
                if code in TRANSIENT_CODES:
                    raise TransientStoreError(f"alert table {self.table} busy: {code}") from exc
                raise StoreError(f"alert table {self.table}: writing an alert failed: {code or exc}") from exc
            reasons = [r.get("Code") for r in getattr(exc, "response", {}).get("CancellationReasons", [])]
            if hit_ids and ("ConditionalCheckFailed" in reasons[:len(hit_ids)]
                            or (not reasons and self._recorded_ids(hit_ids))):
                raise HitRecordedError(hit_ids[0]) from exc
            # a failed version or pointer check, or a conflicting transaction: computed again after a wait
            raise StaleAlertError(alert_id) from exc

    def _commit(self, change: AlertChange) -> None:
        self._commit_changes([change])  # one change always fits one transaction

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
