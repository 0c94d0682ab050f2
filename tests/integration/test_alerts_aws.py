"""The AWS path of alerts against a moto server with real boto3 clients: the Kinesis handler,
wired from the environment (ALERTS_BACKEND=dynamodb, ALERTS_SNS_TOPIC_ARN), writes alerts to the
DynamoDB table and publishes new severe ones to the SNS topic (read back through an SQS
subscription); a redelivered batch changes no alert."""

from __future__ import annotations

import json
import uuid
import warnings
from pathlib import Path
from typing import Any

import boto3
import pytest

import app as chalice_app
from chalicelib.alerts import AlertFilter
from chalicelib.settings import Settings
from chalicelib.stores.alerts_dynamodb import DynamoDBAlertStore, create_alert_table
from fraudtools.record_files import StreamRecord, batched, kinesis_event, records_from_lines
from tests.conftest import PROJECT, SEED_SAMPLE

pytestmark = pytest.mark.integration


def client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def test_the_handler_keeps_alerts_in_dynamodb_and_publishes_to_sns(moto_endpoint: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    table, topic_name = f"alerts-{uuid.uuid4().hex[:8]}", f"alerts-{uuid.uuid4().hex[:8]}"
    create_alert_table(client("dynamodb", moto_endpoint), table)
    sns, sqs = client("sns", moto_endpoint), client("sqs", moto_endpoint)
    topic = sns.create_topic(Name=topic_name)["TopicArn"]
    queue = sqs.create_queue(QueueName=topic_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    for name, value in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                        "DATA_DIR": str(tmp_path), "RULES_FILE": str(PROJECT / "rules.yaml"),
                        "ALERTS_BACKEND": "dynamodb", "ALERTS_TABLE": table, "ALERTS_SNS_TOPIC_ARN": topic}.items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env().alerts_backend == "dynamodb"
    with SEED_SAMPLE.open("rb") as handle:
        records = [r for r in records_from_lines(handle, "auto") if isinstance(r, StreamRecord)]
    chalice_app.reset_pipeline()
    try:
        for batch in batched(records, 100):
            assert chalice_app.on_transactions(kinesis_event(batch), None)["batchItemFailures"] == []
        assert chalice_app.on_transactions(kinesis_event(records[:100]), None)["batchItemFailures"] == []  # again
        inbox = chalice_app.get_pipeline().alerts
        assert inbox is not None
        for _ in range(10):  # one batch publishes at most ten; the rest go out after later batches
            inbox.publish_due()
    finally:
        chalice_app.reset_pipeline()
    store = DynamoDBAlertStore(client("dynamodb", moto_endpoint), table)
    alerts = store.list_alerts(AlertFilter(), 500)
    hits = [json.loads(line) for line in (tmp_path / "hits.jsonl").read_text().splitlines()]
    per_account: dict[str, int] = {}
    for h in hits:
        if h["mode"] == "enforce":
            per_account[h["account_id"]] = per_account.get(h["account_id"], 0) + 1
    assert {a.account_id: a.hit_count for a in alerts} == per_account
    published = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        published += [json.loads(m["Body"])["alert"]["alert_id"] for m in messages]
        sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                          for i, m in enumerate(messages)])
    assert sorted(published) == sorted(a.alert_id for a in alerts if a.severity in ("high", "critical"))


def test_the_api_writes_alert_changes_as_the_writer_role_named_for_the_caller(
        moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalice.test import Client

    from chalicelib.alerts import AlertHit, AlertPolicy
    from chalicelib.stores.alerts_dynamodb import assumed_role_client
    from chalicelib.wiring import build_investigator

    table = f"alerts-{uuid.uuid4().hex[:8]}"
    create_alert_table(client("dynamodb", moto_endpoint), table)
    role = client("iam", moto_endpoint).create_role(
        RoleName=f"alert-writer-{uuid.uuid4().hex[:6]}", Path="/fraud-alert-writer/",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
             "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    for name, value in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                        "DATA_DIR": str(tmp_path), "ALERTS_BACKEND": "dynamodb", "ALERTS_TABLE": table,
                        "ALERTS_WRITER_ROLE_ARN": role}.items():
        monkeypatch.setenv(name, value)

    writer_client = assumed_role_client(client("sts", moto_endpoint), role, "arn:aws:iam::123456789012:user/ana",
                                        "us-east-1")
    credentials = writer_client._get_credentials()
    identity = boto3.client("sts", endpoint_url=moto_endpoint, region_name="us-east-1",
                            aws_access_key_id=credentials.access_key, aws_secret_access_key=credentials.secret_key,
                            aws_session_token=credentials.token).get_caller_identity()
    assert identity["Arn"].endswith(f"assumed-role/{role.rsplit('/', 1)[1]}/ana")

    seed = DynamoDBAlertStore(client("dynamodb", moto_endpoint), table)
    (change,) = seed.record_hits([AlertHit("h1", "acct-1", "velocity-1m", "high", "2026-12-01T10:00:00.000Z", "e1")],
                                 AlertPolicy(), "2026-12-01T10:00:01.000Z")
    investigator = build_investigator(Settings.from_env())
    assert investigator.alerts is not None and investigator.alerts.writer is not None
    chalice_app.use_investigator(investigator)
    chalice_app.use_local_user("ana")
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")
    try:
        with Client(chalice_app.app) as test_client:
            answer = test_client.http.post(f"/api/alerts/{change.after.alert_id}/verdict",
                                           headers={"Content-Type": "application/json"},
                                           body=json.dumps({"verdict": "fraud"}))
        assert answer.status_code == 200, answer.body
    finally:
        chalice_app.use_investigator(None)
        chalice_app.use_local_user(None)
        investigator.close()
    closed = seed.alert(change.after.alert_id)
    assert closed is not None and (closed.status, closed.verdict) == ("closed", "fraud")
    assert seed.audit_of(closed.alert_id)[-1].actor == "ana"
