"""infra/fraud-infra.yaml gives new accounts a Timestream for InfluxDB instance that only the
function can reach, and the function only the secret it needs (checked offline on the template)."""

from __future__ import annotations

from typing import Any

from cfnlint.decode import decode

from tests.conftest import PROJECT


def template() -> dict[str, Any]:
    parsed, errors = decode(str(PROJECT / "infra" / "fraud-infra.yaml"))
    assert not errors and parsed is not None
    return dict(parsed)


def test_new_accounts_get_influxdb_by_default_and_timestream_only_on_request() -> None:
    t = template()
    assert t["Parameters"]["TimeSeriesBackend"]["Default"] == "influxdb"
    resources = t["Resources"]
    assert resources["InfluxInstance"]["Condition"] == "UseInflux"
    assert {resources[n]["Condition"] for n in ("TimestreamDatabase", "TimestreamTable", "TimestreamIngestEndpoint",
                                                "TimestreamQueryEndpoint")} == {"UseTimestream"}


def test_the_instance_is_private_and_admits_the_function_only() -> None:
    resources = template()["Resources"]
    instance = resources["InfluxInstance"]["Properties"]
    assert instance["PubliclyAccessible"] is False
    assert instance["VpcSubnetIds"] == [{"Ref": "PrivateSubnetA"}, {"Ref": "PrivateSubnetB"}]
    assert instance["VpcSecurityGroupIds"] == [{"Ref": "InfluxSecurityGroup"}]
    ingress = resources["InfluxSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert [(r["FromPort"], r["ToPort"], r["SourceSecurityGroupId"]) for r in ingress] == [
        (8086, 8086, {"Ref": "FunctionSecurityGroup"})]
    assert not any("CidrIp" in r for r in ingress)
    # the administrator's password is generated and never appears in the template
    assert "resolve:secretsmanager" in str(instance["Password"])
    assert resources["InfluxAdminSecret"]["Properties"]["GenerateSecretString"]["GenerateStringKey"] == "password"


def test_the_function_reaches_secrets_manager_privately() -> None:
    endpoint = template()["Resources"]["SecretsManagerEndpoint"]
    assert endpoint["Condition"] == "UseInflux"
    assert endpoint["Properties"]["PrivateDnsEnabled"] is True
