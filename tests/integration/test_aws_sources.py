"""The S3 rules source and `rules push` against moto's S3, the SQS dead-letter sink against SQS."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.events import PoisonRecord, RawRecord
from chalicelib.rules import RulesFileError, S3RulesSource, load_rules_text
from chalicelib.stores.aws_sinks import SqsDeadLetterSink
from tests.conftest import PROJECT

pytestmark = pytest.mark.integration
V1 = "version: 1\nrules:\n  - {id: v, kind: velocity, window: 1m, threshold: 5}\n"
V2 = V1.replace("threshold: 5", "threshold: 9")
BROKEN = V1.replace("1m", "one minute")


def client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    name = f"rules-{uuid.uuid4().hex[:8]}"
    client("s3", moto_endpoint).create_bucket(Bucket=name)
    return name


def test_s3_source_follows_new_versions_and_keeps_the_last_good(moto_endpoint: str, bucket: str) -> None:
    s3 = client("s3", moto_endpoint)
    s3.put_object(Bucket=bucket, Key="rules.yaml", Body=V1.encode())
    clock = Clock()
    source = S3RulesSource(bucket, "rules.yaml", s3, reload_seconds=30, clock=clock)
    assert source.current().rules[0].config.threshold == 5
    s3.put_object(Bucket=bucket, Key="rules.yaml", Body=V2.encode())
    clock.now = 29
    assert source.current().rules[0].config.threshold == 5  # not checked yet
    clock.now = 30
    assert source.current().rules[0].config.threshold == 9  # new ETag, new rules
    s3.put_object(Bucket=bucket, Key="rules.yaml", Body=BROKEN.encode())
    clock.now = 60
    assert source.current().rules[0].config.threshold == 9 and source.rejected is not None
    assert f"s3://{bucket}/rules.yaml:3 rule 'v' field 'window'" in str(source.rejected)
    s3.delete_object(Bucket=bucket, Key="rules.yaml")
    clock.now = 90
    assert source.current().rules[0].config.threshold == 9  # gone: the last good stays in force


def test_s3_source_starts_from_the_packaged_rules_when_s3_is_empty(moto_endpoint: str, bucket: str) -> None:
    s3 = client("s3", moto_endpoint)
    packaged = load_rules_text(V2)
    clock = Clock()
    source = S3RulesSource(bucket, "rules.yaml", s3, reload_seconds=1, clock=clock, fallback=packaged)
    assert source.current().version == packaged.version
    s3.put_object(Bucket=bucket, Key="rules.yaml", Body=V1.encode())
    clock.now = 5
    assert source.current().rules[0].config.threshold == 5
    with pytest.raises(Exception, match=r"Not Found|NoSuchKey|404"):
        S3RulesSource(bucket, "missing.yaml", s3)  # and without a fallback, a missing object is an error


def test_rules_push_validates_before_uploading(moto_endpoint: str, bucket: str, tmp_path: Path) -> None:
    def push(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "chalicelib", "rules", "push", str(path), "--bucket", bucket,
                               "--key", "live/rules.yaml", "--endpoint-url", moto_endpoint, "--region", "us-east-1"],
                              cwd=PROJECT, capture_output=True, text=True, timeout=120,
                              env={"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "testing",
                                   "AWS_SECRET_ACCESS_KEY": "testing"})

    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    refused = push(broken)
    assert refused.returncode == 1 and "invalid duration" in refused.stderr
    s3 = client("s3", moto_endpoint)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # nothing was uploaded
    uploaded = push(PROJECT / "rules.yaml")
    assert uploaded.returncode == 0, uploaded.stderr
    head = s3.head_object(Bucket=bucket, Key="live/rules.yaml")
    body = s3.get_object(Bucket=bucket, Key="live/rules.yaml")["Body"].read()
    assert body == (PROJECT / "rules.yaml").read_bytes()
    assert head["Metadata"]["ruleset-version"] in uploaded.stdout


def test_poison_records_reach_the_sqs_dead_letter_queue(moto_endpoint: str) -> None:
    sqs = client("sqs", moto_endpoint)
    url = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    poison = [PoisonRecord(RawRecord(f"s:{i}", str(i), "pk", b"\xff" * (i + 1)), f"reason {i}") for i in range(13)]
    assert SqsDeadLetterSink(sqs, url).write(poison) == [f"s:{i}" for i in range(13)]
    received: dict[str, Any] = {}
    for _ in range(5):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            body = json.loads(message["Body"])
            received[body["record_id"]] = body
    assert set(received) == {f"s:{i}" for i in range(13)}
    assert received["s:2"]["reason"] == "reason 2" and received["s:2"]["data_base64"] == "////"


def test_broken_rules_never_replace_a_good_s3_version_even_at_start(moto_endpoint: str, bucket: str) -> None:
    s3 = client("s3", moto_endpoint)
    s3.put_object(Bucket=bucket, Key="rules.yaml", Body=BROKEN.encode())
    with pytest.raises(RulesFileError):
        S3RulesSource(bucket, "rules.yaml", s3)
