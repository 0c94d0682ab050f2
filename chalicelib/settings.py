"""Configuration, read once from the environment into a frozen object.

| variable              | default                          | meaning                                   |
|-----------------------|----------------------------------|-------------------------------------------|
| DATA_DIR              | .data                            | where the embedded stores and sinks live  |
| RULES_FILE            | rules.yaml beside app.py         | the rules file (hot-reloaded)             |
| RULES_RELOAD_SECONDS  | 30                               | check the rules source at most this often |
| TIMESERIES_BACKEND    | sqlite                           | sqlite (embedded), influxdb or timestream |
| TIMESTREAM_DATABASE   | fraud                            | Timestream database (backend timestream)  |
| TIMESTREAM_TABLE      | transactions                     | Timestream table                          |
| INFLUXDB_URL          |                                  | https://HOST:8086 (backend influxdb)      |
| INFLUXDB_DATABASE     | fraud                            | database (1.x) / DBRP-mapped bucket (2.x) |
| INFLUXDB_RETENTION_POLICY |                              | retention policy; empty: the default one  |
| INFLUXDB_SECRET_ARN   |                                  | secret (Secrets Manager) read at cold start |
| INFLUXDB_TIMEOUT_SECONDS | 10                            | connect/read timeout per request          |
| INFLUXDB_CA_BUNDLE    |                                  | PEM file to trust instead of system CAs   |
| RULES_S3_URI          |                                  | s3://bucket/key: rules from S3 (ETag)     |
| DEAD_LETTER_QUEUE_URL |                                  | SQS queue for poison records; empty: the  |
|                       |                                  | JSON-lines file in DATA_DIR               |
| HIT_SINK              | jsonl                            | jsonl (hits.jsonl in DATA_DIR) or log (one|
|                       |                                  | JSON log line per hit; the aws stage)     |
| GRAPH_BACKEND         | sqlite                           | sqlite, gremlite (embedded), neptune, none|
| NEPTUNE_ENDPOINT      |                                  | Neptune cluster endpoint host name        |
| NEPTUNE_WRITE_FORM    | merge                            | merge (mergeV/mergeE, engine 1.2.1.0+) or |
|                       |                                  | coalesce (engines without merge steps)    |
| NEPTUNE_LAST_SEEN_GRANULARITY_SECONDS | 3600             | refresh a relationship's last_seen when it|
|                       |                                  | moved at least this much (0: always)      |
| NEPTUNE_PORT          | 8182                             |                                           |
| NEPTUNE_IAM_AUTH      | true                             | sign the connection with SigV4            |
| MAX_RECORD_BYTES      | 32768                            | larger records are dead-lettered          |
| WINDOW_CACHE_MB       | 256                              | rule windows a warm container keeps; 0=off|
| SQLITE_BUSY_TIMEOUT_SECONDS | 10                         | embedded stores: wait this long for another|
|                       |                                  | writer's lock, then redeliver the batch   |
| LOG_LEVEL             | INFO                             | logging level                             |
| RULES_PLUGINS_ALLOWED |                                  | modules rules.yaml `plugins:` may import  |
| ALERTS_BACKEND        | sqlite                           | sqlite (alerts.sqlite in DATA_DIR),       |
|                       |                                  | dynamodb or none                          |
| ALERTS_TABLE          | fraud-alerts                     | DynamoDB table (backend dynamodb)         |
| ALERTS_QUIET_PERIOD_SECONDS | 86400                      | after a verdict, hits this long after the |
|                       |                                  | alert's last hit still join it            |
| ALERTS_WEBHOOK_URL    |                                  | POST new high/critical alerts here        |
| ALERTS_WEBHOOK_SECRET |                                  | HMAC-SHA256 key of the webhook signature  |
| ALERTS_SNS_TOPIC_ARN  |                                  | publish new high/critical alerts to SNS   |
| ALERTS_WRITER_ROLE_ARN |                                 | the API writes alert changes as this role |
|                       |                                  | (assumed per change; dynamodb backend)    |

RULES_PLUGINS_ALLOWED is a comma-separated list of module names; each also allows its submodules
(`acme_rules` allows `acme_rules.velocity2`). Empty: a rules file may import no plugin module.
Kinds from installed packages (the `chalicelib.rule_kinds` entry-point group) need no entry:
installing a package is already an explicit act of whoever deploys the engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from chalicelib.events import MAX_RECORD_BYTES

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent

TimeSeriesBackend = Literal["sqlite", "timestream", "influxdb"]
TIMESERIES_BACKENDS: tuple[TimeSeriesBackend, ...] = ("sqlite", "timestream", "influxdb")
GraphBackend = Literal["sqlite", "gremlite", "neptune", "none"]
GRAPH_BACKENDS: tuple[GraphBackend, ...] = ("sqlite", "gremlite", "neptune", "none")
NeptuneWriteForm = Literal["merge", "coalesce"]
NEPTUNE_WRITE_FORMS: tuple[NeptuneWriteForm, ...] = ("merge", "coalesce")
HitSinkKind = Literal["jsonl", "log"]
HIT_SINKS: tuple[HitSinkKind, ...] = ("jsonl", "log")
AlertsBackend = Literal["sqlite", "dynamodb", "none"]
ALERTS_BACKENDS: tuple[AlertsBackend, ...] = ("sqlite", "dynamodb", "none")


class SettingsError(ValueError):
    """An environment variable has a value the engine cannot use."""


def default_rules_file() -> Path:
    """The project's rules.yaml; in a deployed package, the copy packaged inside chalicelib/."""
    for candidate in (PROJECT_DIR / "rules.yaml", PACKAGE_DIR / "rules.yaml"):
        if candidate.exists():
            return candidate
    return PROJECT_DIR / "rules.yaml"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".data")
    rules_file: Path = PROJECT_DIR / "rules.yaml"
    rules_reload_seconds: float = 30.0
    timeseries_backend: TimeSeriesBackend = "sqlite"
    max_record_bytes: int = MAX_RECORD_BYTES
    log_level: str = "INFO"
    graph_backend: GraphBackend = "sqlite"
    neptune_endpoint: str = ""
    neptune_write_form: NeptuneWriteForm = "merge"
    neptune_last_seen_granularity_s: float = 3600.0
    neptune_port: int = 8182
    neptune_iam_auth: bool = True
    aws_region: str = "us-east-1"
    timestream_database: str = "fraud"
    timestream_table: str = "transactions"
    influxdb_url: str = ""
    influxdb_database: str = "fraud"
    influxdb_retention_policy: str = ""
    #: the secret's ARN only; the credentials themselves are read at cold start and never kept here
    influxdb_secret_arn: str = ""
    influxdb_timeout_seconds: float = 10.0
    influxdb_ca_bundle: str = ""
    rules_s3_uri: str = ""
    dead_letter_queue_url: str = ""
    hit_sink: HitSinkKind = "jsonl"
    rules_plugins_allowed: tuple[str, ...] = ()
    window_cache_mb: float = 256.0
    sqlite_busy_timeout_seconds: float = 10.0
    alerts_backend: AlertsBackend = "sqlite"
    alerts_table: str = "fraud-alerts"
    alerts_quiet_period_s: float = 86400.0
    alerts_webhook_url: str = ""
    alerts_webhook_secret: str = field(default="", repr=False)  # never printed with the settings
    alerts_sns_topic_arn: str = ""
    alerts_writer_role_arn: str = ""

    @property
    def alerts_path(self) -> Path:
        """The embedded alert store (ALERTS_BACKEND=sqlite)."""
        return self.data_dir / "alerts.sqlite"

    @property
    def graph_path(self) -> Path:
        """The gremlite graph file (GRAPH_BACKEND=gremlite)."""
        return self.data_dir / "graph.sqlite"

    @property
    def sqlite_graph_path(self) -> Path:
        """The embedded default graph's tables (GRAPH_BACKEND=sqlite)."""
        return self.data_dir / "entity-graph.sqlite"

    @property
    def timeseries_path(self) -> Path:
        return self.data_dir / "timeseries.sqlite"

    @property
    def hits_path(self) -> Path:
        return self.data_dir / "hits.jsonl"

    @property
    def dead_letter_path(self) -> Path:
        return self.data_dir / "dead-letters.jsonl"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        backend = env.get("TIMESERIES_BACKEND", "sqlite")
        if backend not in TIMESERIES_BACKENDS:
            raise SettingsError(
                f"TIMESERIES_BACKEND={backend!r} is not known: use one of {', '.join(TIMESERIES_BACKENDS)}"
            )
        graph = env.get("GRAPH_BACKEND", "sqlite")
        if graph not in GRAPH_BACKENDS:
            raise SettingsError(f"GRAPH_BACKEND={graph!r} is not known: use one of {', '.join(GRAPH_BACKENDS)}")
        write_form = env.get("NEPTUNE_WRITE_FORM", "merge")
        if write_form not in NEPTUNE_WRITE_FORMS:
            raise SettingsError(f"NEPTUNE_WRITE_FORM={write_form!r} is not known: use one of "
                                f"{', '.join(NEPTUNE_WRITE_FORMS)}")
        hit_sink = env.get("HIT_SINK", "jsonl")
        if hit_sink not in HIT_SINKS:
            raise SettingsError(f"HIT_SINK={hit_sink!r} is not known: use one of {', '.join(HIT_SINKS)}")
        alerts = env.get("ALERTS_BACKEND", "sqlite")
        if alerts not in ALERTS_BACKENDS:
            raise SettingsError(f"ALERTS_BACKEND={alerts!r} is not known: use one of {', '.join(ALERTS_BACKENDS)}")
        webhook = env.get("ALERTS_WEBHOOK_URL", "")
        if webhook and not webhook.startswith(("http://", "https://")):
            raise SettingsError(f"ALERTS_WEBHOOK_URL={webhook[:80]!r} is not an HTTP URL: use e.g. https://HOST/hook")
        if webhook and not env.get("ALERTS_WEBHOOK_SECRET"):
            raise SettingsError("ALERTS_WEBHOOK_URL needs ALERTS_WEBHOOK_SECRET (the key receivers check the "
                                "signature with)")
        return cls(
            alerts_backend=alerts,  # type: ignore[arg-type]
            alerts_table=env.get("ALERTS_TABLE", "fraud-alerts"),
            alerts_quiet_period_s=_number(env, "ALERTS_QUIET_PERIOD_SECONDS", 86400.0),
            alerts_webhook_url=webhook,
            alerts_webhook_secret=env.get("ALERTS_WEBHOOK_SECRET", ""),
            alerts_sns_topic_arn=env.get("ALERTS_SNS_TOPIC_ARN", ""),
            alerts_writer_role_arn=env.get("ALERTS_WRITER_ROLE_ARN", ""),
            graph_backend=graph,  # type: ignore[arg-type]
            neptune_endpoint=env.get("NEPTUNE_ENDPOINT", ""),
            neptune_write_form=write_form,  # type: ignore[arg-type]
            neptune_last_seen_granularity_s=_number(env, "NEPTUNE_LAST_SEEN_GRANULARITY_SECONDS", 3600.0),
            neptune_port=int(_number(env, "NEPTUNE_PORT", 8182)),
            neptune_iam_auth=env.get("NEPTUNE_IAM_AUTH", "true").lower() not in ("0", "false", "no"),
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            timestream_database=env.get("TIMESTREAM_DATABASE", "fraud"),
            timestream_table=env.get("TIMESTREAM_TABLE", "transactions"),
            influxdb_url=_http_url(env.get("INFLUXDB_URL", "")),
            influxdb_database=env.get("INFLUXDB_DATABASE", "fraud"),
            influxdb_retention_policy=env.get("INFLUXDB_RETENTION_POLICY", ""),
            influxdb_secret_arn=env.get("INFLUXDB_SECRET_ARN", ""),
            influxdb_timeout_seconds=_number(env, "INFLUXDB_TIMEOUT_SECONDS", 10.0),
            influxdb_ca_bundle=env.get("INFLUXDB_CA_BUNDLE", ""),
            rules_s3_uri=_s3_uri(env.get("RULES_S3_URI", "")),
            dead_letter_queue_url=env.get("DEAD_LETTER_QUEUE_URL", ""),
            hit_sink=hit_sink,  # type: ignore[arg-type]
            data_dir=Path(env.get("DATA_DIR", ".data")),
            rules_file=Path(env["RULES_FILE"]) if env.get("RULES_FILE") else default_rules_file(),
            rules_reload_seconds=_number(env, "RULES_RELOAD_SECONDS", 30.0),
            timeseries_backend=backend,  # type: ignore[arg-type]
            max_record_bytes=int(_number(env, "MAX_RECORD_BYTES", MAX_RECORD_BYTES)),
            window_cache_mb=_number(env, "WINDOW_CACHE_MB", 256.0),
            sqlite_busy_timeout_seconds=_number(env, "SQLITE_BUSY_TIMEOUT_SECONDS", 10.0),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            rules_plugins_allowed=rules_plugins_allowed(env),
        )


def rules_plugins_allowed(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The modules (and their submodules) a rules file's `plugins:` may import (also what the
    tools pass the rules loader, e.g. in `rules check`; the engine takes it from `Settings`)."""
    env = os.environ if env is None else env
    return tuple(name.strip() for name in env.get("RULES_PLUGINS_ALLOWED", "").split(",") if name.strip())


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a number: set it to e.g. {default:g}") from None
    if value < 0:
        raise SettingsError(f"{name}={text!r} must not be negative")
    return value


def _s3_uri(text: str) -> str:
    if text and not (text.startswith("s3://") and "/" in text[5:] and not text.endswith("/")):
        raise SettingsError(f"RULES_S3_URI={text!r} is not an object URI: use s3://BUCKET/KEY (e.g. s3://b/rules.yaml)")
    return text


def _http_url(text: str) -> str:
    if text and not (text.startswith(("http://", "https://")) and len(text.split("://", 1)[1]) > 0):
        raise SettingsError(f"INFLUXDB_URL={text!r} is not an HTTP URL: use e.g. https://HOST:8086")
    return text


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key
