"""The investigator's view: a read-only REST API (routes in app.py) and the web page over it.

`build_investigator(settings)` opens the stores the settings name, for reading: the rules source
(file or S3, as the pipeline does), the time-series store and the graph.
"""

from __future__ import annotations

from chalicelib.api.params import ParameterError
from chalicelib.api.service import Investigator, NotFound, Unavailable
from chalicelib.rules import FileRulesSource, RulesSource
from chalicelib.settings import Settings
from chalicelib.stores import build_graph_store, build_timeseries_store


def build_investigator(settings: Settings) -> Investigator:
    rules: RulesSource
    if settings.rules_s3_uri:
        import boto3

        from chalicelib.rules import S3RulesSource, load_rules_file
        from chalicelib.settings import split_s3_uri

        bucket, key = split_s3_uri(settings.rules_s3_uri)
        allowed = settings.rules_plugins_allowed
        rules = S3RulesSource(bucket, key, boto3.client("s3", region_name=settings.aws_region),
                              settings.rules_reload_seconds, plugins_allowed=allowed,
                              fallback=load_rules_file(settings.rules_file, plugins_allowed=allowed))
    else:
        rules = FileRulesSource(settings.rules_file, settings.rules_reload_seconds,
                                plugins_allowed=settings.rules_plugins_allowed)
    from chalicelib.wiring import alert_inbox

    return Investigator(rules, build_timeseries_store(settings), build_graph_store(settings),
                        alerts=alert_inbox(settings))


__all__ = ["Investigator", "NotFound", "ParameterError", "Unavailable", "build_investigator"]
