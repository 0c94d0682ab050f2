"""The Timestream writer with a real boto3 client against moto's timestream-write server.
(moto's timestream-query cannot evaluate SQL, so the existence query is answered by a Stubber.)"""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.events import Transaction
from chalicelib.stores.timestream import MEASURE, TimestreamTimeSeriesStore

pytestmark = pytest.mark.integration
COLUMNS = [{"Name": n, "Type": {"ScalarType": "VARCHAR"}} for n in ("event_id",)]


def events(n: int) -> list[Transaction]:
    return [Transaction(event_id=f"e{i}", ts=datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp() * 1000 + i,
                        account_id=f"a{i % 7}", amount=f"{i}.50", ip="10.0.0.1", attributes={"channel": "web"})
            for i in range(n)]


def stored_records(endpoint: str, table: str) -> list[dict[str, Any]]:
    data = json.load(urllib.request.urlopen(endpoint + "/moto-api/data.json"))
    return next(t["records"] for t in data["timestreamwrite"]["TimestreamTable"] if t["name"] == table)


def test_writes_go_in_calls_of_100_with_common_attributes(moto_endpoint: str) -> None:
    write = boto3.client("timestream-write", endpoint_url=moto_endpoint, region_name="us-east-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing")
    table = f"tx_{uuid.uuid4().hex[:6]}"
    if "fraud" not in [d["DatabaseName"] for d in write.list_databases()["Databases"]]:
        write.create_database(DatabaseName="fraud")
    write.create_table(DatabaseName="fraud", TableName=table)
    calls: list[dict[str, Any]] = []
    write.meta.events.register("provide-client-params.timestream-write.WriteRecords",
                               lambda params, **_: calls.append(params))
    query = boto3.client("timestream-query", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    store = TimestreamTimeSeriesStore("fraud", table, write_client=write, query_client=query,
                                      clock=lambda: 1_800_000_000)
    batch = events(250)
    with Stubber(query) as stub:
        stub.add_response("query", {"QueryId": "q", "Rows": [], "ColumnInfo": COLUMNS})
        result = store.write(batch)
    assert result.new_ids == {e.event_id for e in batch}
    assert [len(c["Records"]) for c in calls] == [100, 100, 50]
    assert all(c["CommonAttributes"] == {"MeasureName": MEASURE, "MeasureValueType": "MULTI",
                                         "TimeUnit": "MILLISECONDS"} for c in calls)
    first = calls[0]["Records"][0]
    assert first["Dimensions"] == [{"Name": "account_id", "Value": "a0", "DimensionValueType": "VARCHAR"},
                                   {"Name": "event_id", "Value": "e0", "DimensionValueType": "VARCHAR"}]
    measures = {m["Name"]: (m["Value"], m["Type"]) for m in first["MeasureValues"]}
    assert measures["amount"] == ("0.50", "VARCHAR") and measures["judged"] == ("0", "BIGINT")
    assert measures["arrival"] == (str(1_800_000_000_000 * 1000), "BIGINT")
    assert json.loads(measures["attributes"][0]) == {"channel": "web"}
    assert len(stored_records(moto_endpoint, table)) == 250

    store.mark_judged([e.event_id for e in batch[:120]])
    assert [len(c["Records"]) for c in calls[3:]] == [100, 20]
    assert {r["Version"] for c in calls[3:] for r in c["Records"]} == {2}
    assert all(("judged", "1", "BIGINT") in [(m["Name"], m["Value"], m["Type"]) for m in r["MeasureValues"]]
               for c in calls[3:] for r in c["Records"])
