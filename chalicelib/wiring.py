"""The one place the engine is assembled from `Settings`: every pipeline (the Lambda handler in
app.py, the CLI, the demo, the tests), the investigator's API and every store are built here.

Each part is chosen by its own setting: the rules source by RULES_S3_URI (else the rules file),
the time-series store by TIMESERIES_BACKEND, the graph by GRAPH_BACKEND, dead letters by
DEAD_LETTER_QUEUE_URL (else a JSON-lines file), hits by HIT_SINK, alerts by ALERTS_BACKEND (their
notifications by ALERTS_SNS_TOPIC_ARN, else ALERTS_WEBHOOK_URL). Backends register by name, as
rule kinds do (`@timeseries_backend("sqlite")`, `@graph_backend("neptune")`); the names are the
ones `Settings` accepts. A caller may hand in a part of its own (a fixed rule set, a hits file of
its choosing); the rest still follows the settings. Nothing below this module reads the
environment: `Settings.from_env()` is called by the handler (app.py) and the tools only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.alerts import AlertPolicy
from chalicelib.inbox import AlertInbox
from chalicelib.pipeline import Pipeline
from chalicelib.rules import FileRulesSource, RuleSet, RulesSource, StaticRulesSource
from chalicelib.settings import GraphBackend, Settings
from chalicelib.stores import (
    DeadLetterSink,
    GraphStore,
    HitSink,
    JsonLinesDeadLetterSink,
    JsonLinesHitSink,
    SQLiteGraphStore,
    SQLiteTimeSeriesStore,
    StoreError,
    TimeSeriesStore,
)

# What only some processes use is imported where it is built, as the AWS SDK is: a pipeline on
# the embedded stores (replay, demo) loads neither the investigator's API, the decision service
# nor the Gremlin client.
if TYPE_CHECKING:
    from chalicelib.api.service import Investigator
    from chalicelib.decisions import DecisionService
    from chalicelib.stores.decisions import DecisionLog
    from chalicelib.stores.influx_http import InfluxConnection

TimeSeriesFactory = Callable[[Settings], TimeSeriesStore]
GraphFactory = Callable[[Settings], "GraphStore | None"]
F = TypeVar("F", bound=Callable[[Settings], Any])

_TIMESERIES_BACKENDS: dict[str, TimeSeriesFactory] = {}
_GRAPH_BACKENDS: dict[str, GraphFactory] = {}


def timeseries_backend(name: str) -> Callable[[TimeSeriesFactory], TimeSeriesFactory]:
    """Decorator: register a factory building the time-series store TIMESERIES_BACKEND=`name` names."""

    def register(factory: TimeSeriesFactory) -> TimeSeriesFactory:
        _TIMESERIES_BACKENDS[name] = factory
        return factory

    return register


def graph_backend(name: str) -> Callable[[GraphFactory], GraphFactory]:
    """Decorator: register a factory building the graph GRAPH_BACKEND=`name` names (None: no graph)."""

    def register(factory: GraphFactory) -> GraphFactory:
        _GRAPH_BACKENDS[name] = factory
        return factory

    return register


def timeseries_backends() -> tuple[str, ...]:
    return tuple(_TIMESERIES_BACKENDS)


def graph_backends() -> tuple[str, ...]:
    return tuple(_GRAPH_BACKENDS)


def build_timeseries_store(settings: Settings) -> TimeSeriesStore:
    factory = _TIMESERIES_BACKENDS.get(settings.timeseries_backend)
    if factory is None:
        raise StoreError(f"unknown time-series backend {settings.timeseries_backend!r}: use one of "
                         f"{', '.join(_TIMESERIES_BACKENDS)}")
    return factory(settings)


def build_graph_store(settings: Settings) -> GraphStore | None:
    """The graph the settings name: SQLite tables (default) or gremlite under the data
    directory, Neptune, or none."""
    factory = _GRAPH_BACKENDS.get(settings.graph_backend)
    if factory is None:
        raise StoreError(f"unknown graph backend {settings.graph_backend!r}: use one of {', '.join(_GRAPH_BACKENDS)}")
    return factory(settings)


@timeseries_backend("sqlite")
def _sqlite_timeseries(settings: Settings) -> TimeSeriesStore:
    return SQLiteTimeSeriesStore(settings.timeseries_path, busy_timeout_s=settings.sqlite_busy_timeout_seconds)


@timeseries_backend("timestream")
def _timestream(settings: Settings) -> TimeSeriesStore:
    import boto3  # the AWS SDK is only imported on the AWS path

    from chalicelib.stores.timestream import TimestreamTimeSeriesStore

    return TimestreamTimeSeriesStore(
        settings.timestream_database, settings.timestream_table,
        write_client=boto3.client("timestream-write", region_name=settings.aws_region),
        query_client=boto3.client("timestream-query", region_name=settings.aws_region))


@timeseries_backend("influxdb")
def _influxdb(settings: Settings) -> TimeSeriesStore:
    from chalicelib.stores.influx import InfluxTimeSeriesStore

    return InfluxTimeSeriesStore(influx_connection(settings))


@graph_backend("sqlite")
def _sqlite_graph(settings: Settings) -> GraphStore | None:
    return SQLiteGraphStore(settings.sqlite_graph_path, busy_timeout_s=settings.sqlite_busy_timeout_seconds)


@graph_backend("gremlite")
def _gremlite(settings: Settings) -> GraphStore | None:
    from chalicelib.stores.gremlin_connection import GremliteConnection
    from chalicelib.stores.gremlin_graph import GremlinGraphStore

    return GremlinGraphStore(GremliteConnection(settings.graph_path, timeout_s=settings.sqlite_busy_timeout_seconds))


@graph_backend("neptune")
def _neptune(settings: Settings) -> GraphStore | None:
    from chalicelib.stores.gremlin_connection import NeptuneConnection, NeptuneSettings
    from chalicelib.stores.gremlin_graph import GremlinGraphStore

    if not settings.neptune_endpoint:
        raise StoreError("GRAPH_BACKEND=neptune needs NEPTUNE_ENDPOINT (the cluster endpoint host name)")
    return GremlinGraphStore(
        NeptuneConnection(NeptuneSettings(settings.neptune_endpoint, settings.neptune_port, settings.aws_region,
                                          settings.neptune_iam_auth)),
        write_form=settings.neptune_write_form,
        last_seen_granularity_ms=int(settings.neptune_last_seen_granularity_s * 1000))


@graph_backend("none")
def _no_graph(settings: Settings) -> GraphStore | None:
    return None


def open_embedded_graph(data_dir: Path) -> GraphStore | None:
    """The embedded graph a run left in `data_dir` (SQLite tables, else gremlite), or None."""
    settings = Settings(data_dir=data_dir)
    if settings.sqlite_graph_path.exists():
        return SQLiteGraphStore(settings.sqlite_graph_path)
    if settings.graph_path.exists():
        from chalicelib.stores.gremlin_connection import GremliteConnection
        from chalicelib.stores.gremlin_graph import GremlinGraphStore

        return GremlinGraphStore(GremliteConnection(settings.graph_path))
    return None


def influx_connection(settings: Settings, secrets_client: Any = None) -> InfluxConnection:
    """Where and how to reach InfluxDB. Credentials come from the Secrets Manager secret
    INFLUXDB_SECRET_ARN (JSON: `token`, or `username` + `password`), read once per cold start;
    without a secret the server must allow anonymous access (a local test server)."""
    from chalicelib.stores.influx_http import InfluxConnection

    if not settings.influxdb_url:
        raise StoreError("TIMESERIES_BACKEND=influxdb needs INFLUXDB_URL (e.g. https://HOST:8086)")
    credentials: dict[str, Any] = {}
    if settings.influxdb_secret_arn:
        if secrets_client is None:
            import boto3

            secrets_client = boto3.client("secretsmanager", region_name=settings.aws_region)
        try:
            text = secrets_client.get_secret_value(SecretId=settings.influxdb_secret_arn)["SecretString"]
            credentials = json.loads(text)
        except Exception as exc:  # any failure here means: cannot authenticate
            # the message names the secret, never its content
            raise StoreError(f"cannot read the InfluxDB credentials from {settings.influxdb_secret_arn}: "
                             f"{type(exc).__name__}") from None  # not `from exc`: it may quote the secret
        if not isinstance(credentials, dict) or not (credentials.get("token") or credentials.get("username")):
            raise StoreError(f"secret {settings.influxdb_secret_arn} holds no InfluxDB credentials: "
                             "store JSON with 'token', or 'username' and 'password'")
    return InfluxConnection(
        url=settings.influxdb_url, database=settings.influxdb_database,
        retention_policy=settings.influxdb_retention_policy, token=str(credentials.get("token", "")),
        username=str(credentials.get("username", "")), password=str(credentials.get("password", "")),
        timeout_s=settings.influxdb_timeout_seconds, ca_bundle=settings.influxdb_ca_bundle)


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
        store = SQLiteAlertStore(settings.alerts_path, busy_timeout_s=settings.sqlite_busy_timeout_seconds)
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


def build_investigator(settings: Settings) -> Investigator:
    """The investigator's read-only view over the stores the settings name: the rules source
    (file or S3, as the pipeline's), the time-series store, the graph and the alert inbox."""
    from chalicelib.api.service import Investigator

    return Investigator(rules_source(settings), build_timeseries_store(settings), build_graph_store(settings),
                        alerts=alert_inbox(settings))


def embedded_settings(settings: Settings, data_dir: Path, *, rules_file: Path | None = None,
                      graph_backend: GraphBackend = "sqlite") -> Settings:
    """`settings` pointed at embedded stores in `data_dir` (local runs: replay, demo, the poller)."""
    return replace(settings, data_dir=data_dir, timeseries_backend="sqlite", graph_backend=graph_backend,
                   rules_file=rules_file.resolve() if rules_file is not None else settings.rules_file)


def embedded_pipeline(settings: Settings, ruleset: RuleSet, data_dir: Path, hits_path: Path,
                      dead_letters_path: Path | None = None) -> Pipeline:
    """A pipeline on embedded stores in `data_dir` (the graph `settings` names if embedded, else
    SQLite tables) with a fixed rule set and the given hit and dead-letter files."""
    graph: GraphBackend = "gremlite" if settings.graph_backend == "gremlite" else "sqlite"
    local = embedded_settings(settings, data_dir, graph_backend=graph)
    return build_pipeline(local, rules=StaticRulesSource(ruleset), hits=JsonLinesHitSink(hits_path),
                          dead_letters=JsonLinesDeadLetterSink(dead_letters_path or local.dead_letter_path))


def build_decision_service(settings: Settings, pipeline: Pipeline | None = None) -> DecisionService:
    """Decisions over the pipeline the settings describe; answers kept where hits go (the log in
    AWS, a SQLite file in the data directory otherwise)."""
    from chalicelib.decisions import DecisionService

    return DecisionService(pipeline or build_pipeline(settings), decision_log_for(settings))


def decision_log_for(settings: Settings) -> DecisionLog:
    """Where answers are kept: the log where hits go to the log (AWS), else `decisions.sqlite` in
    the data directory."""
    from chalicelib.stores.decisions import LogDecisionLog, SQLiteDecisionLog

    return LogDecisionLog() if settings.hit_sink == "log" else SQLiteDecisionLog(
        settings.data_dir / "decisions.sqlite", busy_timeout_s=settings.sqlite_busy_timeout_seconds)
