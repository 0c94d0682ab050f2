"""The Lambda response the pipeline writes is the one the local redelivery loops read back."""

from __future__ import annotations

from chalicelib.lambda_response import redelivery_point
from chalicelib.pipeline import BatchReport


def test_a_failed_batch_is_redelivered_from_its_first_failed_record() -> None:
    response = BatchReport(records=3, failed_from="49590338271490256608559692538361571095921575989136588898").to_dict()
    assert response["batchItemFailures"] == [
        {"itemIdentifier": "49590338271490256608559692538361571095921575989136588898"}]
    assert redelivery_point(response) == "49590338271490256608559692538361571095921575989136588898"


def test_a_finished_batch_has_no_redelivery_point() -> None:
    assert redelivery_point(BatchReport(records=3).to_dict()) is None
    assert redelivery_point({}) is None
