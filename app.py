"""Chalice wiring: a thin Kinesis handler that hands each batch to the pipeline.

The pipeline (rules source, stores, sinks) is built once per warm Lambda container. There is no
REST route: a public API Gateway would widen what is exposed for no detection benefit; the
function logs its ruleset version on every (re)load.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from chalice.app import Chalice, KinesisEvent

from chalicelib.pipeline import Pipeline, build_pipeline
from chalicelib.settings import Settings

STREAM_NAME = os.environ.get("KINESIS_STREAM_NAME", "fraud-transactions")

app = Chalice(app_name="fraud-rules")
app.log.setLevel(logging.INFO)
_pipeline: Pipeline | None = None


def get_pipeline() -> Pipeline:
    global _pipeline
    if _pipeline is None:
        settings = Settings.from_env()
        logging.getLogger("chalicelib").setLevel(settings.log_level)
        _pipeline = build_pipeline(settings)
    return _pipeline


def reset_pipeline() -> None:
    """Close the container's pipeline so the next call builds it anew from the environment."""
    global _pipeline
    if _pipeline is not None:
        _pipeline.close()
    _pipeline = None


@app.on_kinesis_record(stream=STREAM_NAME, batch_size=100, starting_position="TRIM_HORIZON")
def on_transactions(event: KinesisEvent) -> dict[str, Any]:
    return get_pipeline().process_kinesis_event(event.to_dict())
