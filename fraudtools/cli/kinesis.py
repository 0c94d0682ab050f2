"""`kinesis produce` and `kinesis poll`: the real Kinesis path for local runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fraudtools.cli.runner import embedded_handler, load_rules_or_exit, progress_bar


def kinesis_client(endpoint_url: str | None, region: str) -> Any:
    import boto3

    return boto3.client("kinesis", endpoint_url=endpoint_url, region_name=region)


def cmd_kinesis_produce(args: argparse.Namespace) -> int:
    from fraudtools.kinesis_stream import KinesisProducer, outgoing_from_lines

    client = kinesis_client(args.endpoint_url, args.region)
    if args.create_stream:
        existing = client.list_streams().get("StreamNames", [])
        if args.stream not in existing:
            client.create_stream(StreamName=args.stream, ShardCount=args.shards)
            client.get_waiter("stream_exists").wait(StreamName=args.stream)
    try:
        with args.events.open("rb") as handle:  # bytes, split on LF only: see outgoing_from_lines
            records = list(outgoing_from_lines(handle, args.partition_field))
    except OSError as exc:
        print(f"error: cannot read events file {args.events}: {exc}", file=sys.stderr)
        return 1
    with progress_bar(len(records), f"put_records to {args.stream}") as advance:
        report = KinesisProducer(client, args.stream).put(records, on_sent=advance)
    print(f"{report.records} records in {report.calls} PutRecords calls; {report.retried_records} retried, "
          f"{len(report.failed)} failed")
    for record, reason in report.failed[:10]:
        print(f"  failed (key {record.partition_key}): {reason}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_kinesis_poll(args: argparse.Namespace) -> int:
    from fraudtools.kinesis_stream import CheckpointFile, KinesisPoller

    load_rules_or_exit(args.rules)
    client = kinesis_client(args.endpoint_url, args.region)
    checkpoints = CheckpointFile(args.checkpoints or args.data_dir / f"checkpoints-{args.stream}.json")
    with embedded_handler(args.rules, args.data_dir) as handler, \
            progress_bar(None, f"polling {args.stream}") as advance:
        report = KinesisPoller(client, args.stream, handler, checkpoints,
                               batch_size=args.batch_size).drain(on_batch=advance)
    print(f"{report.records} records in {report.batches} batches from {len(report.per_shard)} shards "
          f"({', '.join(f'{k}: {v}' for k, v in report.per_shard.items())}); {report.redeliveries} redeliveries; "
          f"checkpoints in {checkpoints.path}")
    return 0
