"""`make package`: the deployment zip and CloudFormation template the AWS path deploys, checked
offline - cfn-lint clean, the Kinesis event source options, rules.yaml inside the zip, a
least-privilege policy - and the packaged code run once on the Lambda runtime's Python."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT

pytestmark = pytest.mark.integration
# Statements whose actions AWS only allows on every resource.
RESOURCE_STAR_ALLOWED = {"timestream:DescribeEndpoints", "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                         "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                         "ec2:UnassignPrivateIpAddresses"}


@pytest.fixture(scope="module")
def package() -> dict[str, Any]:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(["make", "package"], cwd=PROJECT, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((PROJECT / "dist" / "sam.json").read_text())


def test_templates_are_cfn_lint_clean(package: dict[str, Any]) -> None:
    lint = subprocess.run([str(PROJECT / ".venv" / "bin" / "cfn-lint"), "dist/sam.json", "infra/fraud-infra.yaml"],
                          cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_kinesis_event_source_has_partial_batch_responses_bisect_retries_and_a_dlq(package: dict[str, Any]) -> None:
    function = package["Resources"]["OnTransactions"]["Properties"]
    source = function["Events"]["OnTransactionsKinesisEventSource"]
    assert source["Type"] == "Kinesis"
    props = source["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] == 5
    assert props["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    assert "DeadLetterQueueArn" in json.dumps(props["DestinationConfig"])
    assert function["Runtime"] == "python3.13"
    assert set(function["VpcConfig"]) == {"SecurityGroupIds", "SubnetIds"}
    env = function["Environment"]["Variables"]
    # the backend the infra stack was deployed with (influxdb by default; timestream for old accounts)
    assert env["TIMESERIES_BACKEND"] == {"Fn::ImportValue": {"Fn::Sub": "${InfraStack}-TimeSeriesBackend"}}
    assert env["GRAPH_BACKEND"] == "neptune"
    assert {"NEPTUNE_ENDPOINT", "RULES_S3_URI", "DEAD_LETTER_QUEUE_URL", "INFLUXDB_URL", "INFLUXDB_SECRET_ARN",
            "INFLUXDB_DATABASE", "INFLUXDB_TIMEOUT_SECONDS"} <= set(env)
    assert not any(k in env for k in ("INFLUXDB_TOKEN", "INFLUXDB_PASSWORD"))  # credentials only via the secret


def test_the_zip_carries_exactly_the_root_rules_yaml(package: dict[str, Any]) -> None:
    with zipfile.ZipFile(PROJECT / "dist" / "deployment.zip") as archive:
        names = set(archive.namelist())
        assert archive.read("chalicelib/rules.yaml") == (PROJECT / "rules.yaml").read_bytes()
    assert {"app.py", "chalicelib/pipeline.py", "chalicelib/stores/influx.py"} <= names
    assert any(n.startswith("urllib3/") for n in names)  # the InfluxDB backend's HTTP client
    assert any(n.startswith("pydantic_core/") and "cpython-313" in n for n in names)
    assert not any(n.startswith(("tests/", ".venv")) for n in names)


def test_the_zip_holds_the_engine_and_no_tool(package: dict[str, Any]) -> None:
    """The tools (fraudtools/: CLI, simulator, scoring, reports, the rule-author toolkit) stay out."""
    with zipfile.ZipFile(PROJECT / "dist" / "deployment.zip") as archive:
        names = set(archive.namelist())
    assert {"chalicelib/wiring.py", "chalicelib/rules/velocity.py", "chalicelib/api/service.py"} <= names
    assert not any(n.startswith(("fraudtools/", "chalicelib/cli/", "chalicelib/testing/")) for n in names)
    assert not any(n.startswith("hypothesis/") for n in names)


def test_the_policy_names_every_action_and_scopes_resources(package: dict[str, Any]) -> None:
    roles = {name for name, r in package["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    # the investigator's API has its own, read-only; alert changes are written as the alert-writer role;
    # the decision route has its own (tested below)
    assert roles == {"OnTransactionsRole", "ApiHandlerRole", "DecideRole", "AlertWriterRole"}
    role = package["Resources"]["OnTransactionsRole"]
    statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    actions = {a for s in statements for a in s["Action"]}
    assert not [a for a in actions if "*" in a]
    for statement in statements:
        if statement["Resource"] == "*":
            assert set(statement["Action"]) <= RESOURCE_STAR_ALLOWED, statement
    assert {"kinesis:GetRecords", "timestream:WriteRecords", "timestream:Select", "timestream:DescribeEndpoints",
            "neptune-db:connect", "s3:GetObject", "sqs:SendMessage", "secretsmanager:GetSecretValue"} <= actions
    secrets = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert [s["Resource"] for s in secrets] == [{"Fn::ImportValue": {"Fn::Sub": "${InfraStack}-InfluxTokenSecretArn"}}]
    assert {"dynamodb:PutItem", "dynamodb:Query", "sns:Publish"} <= actions
    (publish,) = [s for s in statements if "sns:Publish" in s["Action"]]
    assert publish["Resource"] == {"Fn::ImportValue": {"Fn::Sub": "${InfraStack}-AlertTopicArn"}}


def test_packaged_code_runs_on_the_runtime_python(package: dict[str, Any], tmp_path: Path) -> None:
    record = json.dumps({"event_id": "e1", "account_id": "a", "amount": 500, "ts": "2026-11-01T10:00:00Z"})
    event = {"Records": [{"eventID": "shardId-000000000000:1", "kinesis": {
        "sequenceNumber": "1", "partitionKey": "a", "data": base64.b64encode(record.encode()).decode()}}]}
    script = ("import json, sys, app; print(json.dumps(app.on_transactions(json.loads(sys.argv[1]), None)))")
    result = subprocess.run([str(PROJECT / ".venv-package" / "bin" / "python"), "-c", script, json.dumps(event)],
                            cwd=PROJECT, capture_output=True, text=True, timeout=120,
                            env={"PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path),
                                 "RULES_FILE": str(PROJECT / "rules.yaml")})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["accepted"], report["batchItemFailures"]) == (1, [])
    assert "3.13" in subprocess.run([str(PROJECT / ".venv-package" / "bin" / "python"), "--version"],
                                    capture_output=True, text=True).stdout


READ_ONLY_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "timestream:Select",
                     "timestream:DescribeEndpoints", "secretsmanager:GetSecretValue", "neptune-db:ReadDataViaQuery",
                     "s3:GetObject", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
                     "sts:AssumeRole"} | RESOURCE_STAR_ALLOWED
ALERT_WRITES = {"dynamodb:PutItem", "dynamodb:ConditionCheckItem"}


def test_the_investigator_api_needs_iam_on_every_route_and_is_throttled(package: dict[str, Any]) -> None:
    api = package["Resources"]["RestAPI"]["Properties"]
    definition = api["DefinitionBody"]
    assert definition["securityDefinitions"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    operations = [(path, method, op) for path, item in definition["paths"].items() for method, op in item.items()]
    assert {"/", "/api/hits", "/api/accounts/{account}/neighbourhood", "/api/rings"} <= {p for p, _, _ in operations}
    for path, method, op in operations:
        assert op.get("security") == [{"sigv4": []}], f"{method} {path} is not IAM-authorized"
    (throttle,) = [s for s in api["MethodSettings"] if (s["ResourcePath"], s["HttpMethod"]) == ("/*", "*")]
    assert throttle["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRate"}
    assert throttle["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurst"}
    assert package["Parameters"]["ApiThrottleRate"]["Default"] > 0


def test_the_api_function_is_read_only_and_in_the_vpc(package: dict[str, Any]) -> None:
    function = package["Resources"]["APIHandler"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["ApiHandlerRole", "Arn"]}
    assert set(function["VpcConfig"]) == {"SecurityGroupIds", "SubnetIds"}
    env = function["Environment"]["Variables"]
    assert {"NEPTUNE_ENDPOINT", "RULES_S3_URI", "INFLUXDB_URL", "INFLUXDB_SECRET_ARN"} <= set(env)
    assert "DEAD_LETTER_QUEUE_URL" not in env
    role = package["Resources"]["ApiHandlerRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    actions = {a for s in statements for a in s["Action"]}
    assert actions <= READ_ONLY_ACTIONS, actions - READ_ONLY_ACTIONS
    assert {"neptune-db:ReadDataViaQuery", "timestream:Select", "s3:GetObject"} <= actions
    for statement in statements:
        if statement["Resource"] == "*":
            assert set(statement["Action"]) <= RESOURCE_STAR_ALLOWED, statement


DECISION_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "timestream:WriteRecords",
                    "timestream:Select", "timestream:DescribeEndpoints", "secretsmanager:GetSecretValue",
                    "neptune-db:connect", "s3:GetObject", "sns:Publish", "dynamodb:GetItem", "dynamodb:BatchGetItem",
                    "dynamodb:Query"} | ALERT_WRITES | RESOURCE_STAR_ALLOWED


def test_decisions_have_their_own_function_role_throttle_and_reserved_concurrency(package: dict[str, Any]) -> None:
    resources = package["Resources"]
    function = resources["Decide"]["Properties"]
    assert function["Handler"] == "app.decide" and function["Role"] == {"Fn::GetAtt": ["DecideRole", "Arn"]}
    assert function["ReservedConcurrentExecutions"] == {"Ref": "DecisionsReservedConcurrency"}
    assert package["Parameters"]["DecisionsReservedConcurrency"]["Default"] >= 1
    assert set(function["VpcConfig"]) == {"SecurityGroupIds", "SubnetIds"}
    env = function["Environment"]["Variables"]
    assert {"NEPTUNE_ENDPOINT", "RULES_S3_URI", "INFLUXDB_URL", "INFLUXDB_SECRET_ARN", "TIMESERIES_BACKEND"} <= set(env)
    # the route is IAM-authorized and integrated with the decision function, not the API handler
    post = package["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]["/api/decisions"]["post"]
    assert post["security"] == [{"sigv4": []}]
    assert "${Decide.Arn}" in post["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
    permission = resources["DecideApiPermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "Decide"} and permission["Principal"] == "apigateway.amazonaws.com"
    (throttle,) = [s for s in resources["RestAPI"]["Properties"]["MethodSettings"]
                   if s["ResourcePath"] == "/~1api~1decisions"]
    assert (throttle["HttpMethod"], throttle["ThrottlingRateLimit"]) == ("POST", {"Ref": "DecisionsThrottleRate"})
    # writes the time series and the graph, reads the rules; no stream, no queue
    policies = resources["DecideRole"]["Properties"]["Policies"]
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    actions = {a for s in statements for a in s["Action"]}
    assert actions <= DECISION_ACTIONS, actions - DECISION_ACTIONS
    assert {"timestream:WriteRecords", "neptune-db:connect", "s3:GetObject"} <= actions
    # its hits open alerts as the stream's do
    assert actions >= ALERT_WRITES and {"ALERTS_TABLE", "ALERTS_SNS_TOPIC_ARN"} <= set(env)
    for statement in statements:
        if statement["Resource"] == "*":
            assert set(statement["Action"]) <= RESOURCE_STAR_ALLOWED, statement


def test_alert_changes_are_written_only_as_the_writer_role_the_api_assumes(package: dict[str, Any]) -> None:
    resources = package["Resources"]
    api_statements = [s for p in resources["ApiHandlerRole"]["Properties"]["Policies"]
                      for s in p["PolicyDocument"]["Statement"]]
    assert not ALERT_WRITES & {a for s in api_statements for a in s["Action"]}  # the API role itself cannot write
    (assume,) = [s for s in api_statements if "sts:AssumeRole" in s["Action"]]
    assert assume["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/fraud-alert-writer/*"}
    writer = resources["AlertWriterRole"]["Properties"]
    assert writer["Path"] == "/fraud-alert-writer/"
    (trust,) = writer["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Fn::GetAtt": ["ApiHandlerRole", "Arn"]}}
    (statement,) = [s for p in writer["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert set(statement["Action"]) >= ALERT_WRITES and not [a for a in statement["Action"] if "*" in a]
    table = {"Fn::ImportValue": {"Fn::Sub": "${InfraStack}-AlertTableArn"}}
    assert statement["Resource"][0] == table
    env = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert env["ALERTS_WRITER_ROLE_ARN"] == {"Fn::GetAtt": ["AlertWriterRole", "Arn"]}
    assert "ALERTS_SNS_TOPIC_ARN" not in env  # the API publishes nothing
    decide = resources["AlertDeciderPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"]
    read = resources["InvestigatorReadOnlyPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"]
    assert all("/POST/api/alerts/*/" in r["Fn::Sub"] for r in decide)
    assert all("/GET/" in r["Fn::Sub"] for r in read)
