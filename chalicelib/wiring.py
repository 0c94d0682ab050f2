"""The one place a pipeline is assembled from `Settings`: the Lambda handler (app.py), the CLI,
the demo and the tests all build theirs here.

Each part is chosen by its own setting: the rules source by RULES_S3_URI (else the rules file),
the time-series store by TIMESERIES_BACKEND, the graph by GRAPH_BACKEND, dead letters by
DEAD_LETTER_QUEUE_URL (else a JSON-lines file), hits by HIT_SINK, alerts by ALERTS_BACKEND (their
notifications by ALERTS_SNS_TOPIC_ARN, else ALERTS_WEBHOOK_URL). A caller may hand in a part
of its own (a fixed rule set, a hits file of its choosing); the rest still follows the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from chalicelib.alerts import AlertPolicy
from chalicelib.inbox import AlertInbox
from chalicelib.pipeline import Pipeline
from chalicelib.rules import FileRulesSource, RulesSource
from chalicelib.settings import GraphBackend, Settings
from chalicelib.stores import (
    DeadLetterSink,
    HitSink,
    JsonLinesDeadLetterSink,
    JsonLinesHitSink,
    build_graph_store,
    build_timeseries_store,
)


def rules_source(settings: Settings) -> RulesSource:
    """Rules from S3 (falling back to the packaged rules file while S3 cannot be read), else the
    rules file; both hot-reloaded."""
    allowed = settings.rules_plugins_allowed
    if settings.rules_s3_uri:
        import boto3

        from chalicelib.rules import S3RulesSource, load_rules_file
        from chalicelib.settings import split_s3_uri

        bucket, key = split_s3_uri(settings.rules_s3_uri)
        return S3RulesSource(bucket, key, boto3.client("s3", region_name=settings.aws_region),
                             settings.rules_reload_seconds, plugins_allowed=allowed,
                             fallback=load_rules_file(settings.rules_file, plugins_allowed=allowed))
    return FileRulesSource(settings.rules_file, settings.rules_reload_seconds, plugins_allowed=allowed)


def dead_letter_sink(settings: Settings) -> DeadLetterSink:
    if settings.dead_letter_queue_url:
        import boto3

        from chalicelib.stores.aws_sinks import SqsDeadLetterSink

        return SqsDeadLetterSink(boto3.client("sqs", region_name=settings.aws_region),
                                 settings.dead_letter_queue_url)
    return JsonLinesDeadLetterSink(settings.dead_letter_path)


def hit_sink(settings: Settings) -> HitSink:
    if settings.hit_sink == "log":
        from chalicelib.stores.aws_sinks import LogHitSink

        return LogHitSink()
    return JsonLinesHitSink(settings.hits_path)


def alert_inbox(settings: Settings) -> AlertInbox | None:
    """The alert store ALERTS_BACKEND names (None for `none`) with its publisher: SNS when
    ALERTS_SNS_TOPIC_ARN is set, else the webhook when ALERTS_WEBHOOK_URL is, else none."""
    from datetime import timedelta

    from chalicelib.stores.alerts import AlertStore
    from chalicelib.stores.alerts_sqlite import SQLiteAlertStore
    from chalicelib.stores.notifications import Publisher, SnsPublisher, WebhookPublisher

    if settings.alerts_backend == "none":
        return None
    store: AlertStore
    writer: Callable[[str], AlertStore] | None = None
    if settings.alerts_backend == "dynamodb":
        import boto3

        from chalicelib.stores.alerts_dynamodb import DynamoDBAlertStore, assumed_role_client

        region, table = settings.aws_region, settings.alerts_table
        store = DynamoDBAlertStore(boto3.client("dynamodb", region_name=region), table)
        if settings.alerts_writer_role_arn:
            role, sts = settings.alerts_writer_role_arn, boto3.client("sts", region_name=region)

            def writer(actor: str) -> AlertStore:
                return DynamoDBAlertStore(assumed_role_client(sts, role, actor, region), table)
    else:
        store = SQLiteAlertStore(settings.alerts_path)
    publisher: Publisher | None = None
    if settings.alerts_sns_topic_arn:
        import boto3
        from botocore.config import Config

        # short timeouts and one retry: a slow SNS must not hold up the batch (the outbox retries)
        quick = Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"})
        publisher = SnsPublisher(boto3.client("sns", region_name=settings.aws_region, config=quick),
                                 settings.alerts_sns_topic_arn)
    elif settings.alerts_webhook_url:
        publisher = WebhookPublisher(settings.alerts_webhook_url, settings.alerts_webhook_secret)
    return AlertInbox(store, AlertPolicy(quiet_period=timedelta(seconds=settings.alerts_quiet_period_s)), publisher,
                      writer=writer)


def build_pipeline(settings: Settings, *, rules: RulesSource | None = None, hits: HitSink | None = None,
                   dead_letters: DeadLetterSink | None = None) -> Pipeline:
    """The pipeline the settings describe: embedded by default (rules file, SQLite time series,
    SQLite graph tables, JSON-lines hit and dead-letter sinks); in AWS rules from S3, InfluxDB or
    Timestream, Neptune, SQS dead letters and hits in the log."""
    return Pipeline(rules or rules_source(settings), build_timeseries_store(settings),
                    hits or hit_sink(settings), dead_letters or dead_letter_sink(settings),
                    graph=build_graph_store(settings), max_record_bytes=settings.max_record_bytes,
                    window_cache_bytes=int(settings.window_cache_mb * 2**20), alerts=alert_inbox(settings))


def embedded_settings(settings: Settings, data_dir: Path, *, rules_file: Path | None = None,
                      graph_backend: GraphBackend = "sqlite") -> Settings:
    """`settings` pointed at embedded stores in `data_dir` (local runs: replay, demo, the poller)."""
    return replace(settings, data_dir=data_dir, timeseries_backend="sqlite", graph_backend=graph_backend,
                   rules_file=rules_file.resolve() if rules_file is not None else settings.rules_file)
