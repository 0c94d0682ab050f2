"""Moved to `chalicelib.kinesis_io` (Kinesis I/O is a producer and a poller, not a store); this
name keeps old imports working."""

from __future__ import annotations

from chalicelib.kinesis_io import (
    MAX_BYTES_PER_CALL,
    MAX_RECORD_BYTES,
    MAX_RECORDS_PER_CALL,
    RETRYABLE_RECORD_ERRORS,
    CheckpointFile,
    Handler,
    KinesisPoller,
    KinesisProducer,
    Outgoing,
    PollReport,
    ProduceReport,
    api_batches,
    outgoing_from_lines,
)

__all__ = [
    "MAX_BYTES_PER_CALL",
    "MAX_RECORDS_PER_CALL",
    "MAX_RECORD_BYTES",
    "RETRYABLE_RECORD_ERRORS",
    "CheckpointFile",
    "Handler",
    "KinesisPoller",
    "KinesisProducer",
    "Outgoing",
    "PollReport",
    "ProduceReport",
    "api_batches",
    "outgoing_from_lines",
]
