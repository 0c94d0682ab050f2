"""Chalice wiring: a thin Kinesis handler that hands each batch to the pipeline, and the
investigator's view - a read-only REST API under /api and the web page at / - over the same stores.

The pipeline (rules source, stores, sinks) is built once per warm Lambda container, and so is the
API's read-only view. In AWS every route requires IAM authorization (SigV4): nothing is anonymous,
API Gateway throttles, and the API runs in its own function with a read-only role (see
.chalice/config.json and infra/). `python -m chalicelib serve` serves the same routes on 127.0.0.1
without authorization.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from chalice.app import Chalice, IAMAuthorizer, KinesisEvent, Response

from chalicelib.alerts import AlertConflict, AlertNotFound, AlertValueError
from chalicelib.api import Investigator, NotFound, ParameterError, Unavailable
from chalicelib.api import alerts as alert_api
from chalicelib.api import params as p
from chalicelib.api.openapi import openapi_document
from chalicelib.api.service import check_account
from chalicelib.collector import BatchCollector
from chalicelib.decisions import (
    DecisionError,
    DecisionService,
    StoreUnavailable,
    recent_decisions,
)
from chalicelib.inbox import AlertInbox
from chalicelib.lambda_response import BatchResponse
from chalicelib.pipeline import Pipeline
from chalicelib.settings import Settings
from chalicelib.stores import StoreError
from chalicelib.stores.decisions import DecisionLog
from chalicelib.web import asset
from chalicelib.wiring import build_decision_service, build_investigator, build_pipeline, decision_log_for

STREAM_NAME = os.environ.get("KINESIS_STREAM_NAME", "fraud-transactions")

app = Chalice(app_name="fraud-rules")
app.log.setLevel(logging.INFO)
iam = IAMAuthorizer()
_pipeline: Pipeline | None = None
_investigator: Investigator | None = None
_decisions: DecisionService | None = None
_decision_log: DecisionLog | None = None  # kept answers, for reading where no decision is made
_collector = BatchCollector()


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
    use_decisions(None)


def use_pipeline(pipeline: Pipeline | None) -> None:
    """Handle batches with this pipeline (local runs of the real handler; the caller closes it);
    None: build one from the environment again at the next batch."""
    global _pipeline
    _pipeline = pipeline
    use_decisions(None)


def get_investigator() -> Investigator:
    global _investigator
    if _investigator is None:
        _investigator = build_investigator(Settings.from_env())
    return _investigator


def use_investigator(investigator: Investigator | None) -> None:
    """Serve the API from this view of the stores (the `serve` command, tests; the caller closes
    it); None: from the environment again at the next request."""
    global _investigator
    _investigator = investigator


@app.on_kinesis_record(stream=STREAM_NAME, batch_size=100, starting_position="TRIM_HORIZON")
def on_transactions(event: KinesisEvent) -> BatchResponse:
    response = get_pipeline().process_kinesis_event(event.to_dict())
    # The container is this function's own process: it decides how the cyclic collector runs
    # between batches (what a batch leaves for the next is frozen, not walked by every full
    # collection again; chalicelib/collector.py). Library code never does this.
    _collector.after_batch()
    return response


# --------------------------------------------------------------------------- investigator's API


def _query() -> dict[str, str]:
    request = app.current_request
    return dict(request.query_params or {}) if request is not None else {}


def _answer(work: Callable[[Investigator], Any]) -> Response:
    """Run a read under the view's lock; map what went wrong to a status and a JSON message."""
    try:
        investigator = get_investigator()
        with investigator.reading():
            return _json(200, work(investigator))
    except ParameterError as exc:
        return _json(400, {"error": str(exc)})
    except NotFound as exc:
        return _json(404, {"error": str(exc)})
    except (Unavailable, StoreError) as exc:
        app.log.error("investigator API: %s", exc)
        return _json(503, {"error": str(exc)})


def _path_value(raw: str) -> str:
    """A path parameter as the caller meant it. Neither API Gateway nor Chalice's local server
    decodes path parameters (the page builds them with encodeURIComponent): `a%2Fb` is `a/b`."""
    return unquote(raw, errors="strict")


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body, default=str), status_code=status,
                    headers={"Content-Type": "application/json", "Cache-Control": "no-store"})


def _account(raw: str) -> str:
    try:
        return check_account(_path_value(raw))
    except UnicodeDecodeError:
        raise ParameterError("account: percent-encode the account id's UTF-8 bytes (encodeURIComponent)") from None


@app.route("/api/health", methods=["GET"], authorizer=iam)
def api_health() -> Response:
    return _answer(lambda inv: inv.health())


@app.route("/api/rules", methods=["GET"], authorizer=iam)
def api_rules() -> Response:
    return _answer(lambda inv: inv.rules_in_force())


@app.route("/api/hits", methods=["GET"], authorizer=iam)
def api_hits() -> Response:
    return _answer(lambda inv: inv.hits(p.parse(p.HitsQuery, _query())))


@app.route("/api/hit-rates", methods=["GET"], authorizer=iam)
def api_hit_rates() -> Response:
    return _answer(lambda inv: inv.hit_rates(p.parse(p.RatesQuery, _query())))


@app.route("/api/top-accounts", methods=["GET"], authorizer=iam)
def api_top_accounts() -> Response:
    return _answer(lambda inv: inv.top_accounts(p.parse(p.TopAccountsQuery, _query())))


@app.route("/api/accounts/{account}/activity", methods=["GET"], authorizer=iam)
def api_account_activity(account: str) -> Response:
    return _answer(lambda inv: inv.activity(_account(account), p.parse(p.ActivityQuery, _query())))


@app.route("/api/accounts/{account}/aggregates", methods=["GET"], authorizer=iam)
def api_account_aggregates(account: str) -> Response:
    def work(inv: Investigator) -> Any:
        p.parse(p.NoQuery, _query())
        return inv.aggregates(_account(account))

    return _answer(work)


@app.route("/api/accounts/{account}/hits", methods=["GET"], authorizer=iam)
def api_account_hits(account: str) -> Response:
    return _answer(lambda inv: inv.hits(p.parse(p.AccountHitsQuery, _query()), _account(account)))


@app.route("/api/accounts/{account}/neighbourhood", methods=["GET"], authorizer=iam)
def api_account_neighbourhood(account: str) -> Response:
    return _answer(lambda inv: inv.neighbourhood(_account(account), p.parse(p.NeighbourhoodQuery, _query())))


@app.route("/api/rings", methods=["GET"], authorizer=iam)
def api_rings() -> Response:
    return _answer(lambda inv: inv.rings(p.parse(p.RingsQuery, _query())))


# --------------------------------------------------------------------------- alerts (chalicelib/api/alerts.py)

_local_user: str | None = None


def use_local_user(name: str | None) -> None:
    """The actor of alert changes when the request carries no IAM caller (`serve --user NAME`)."""
    global _local_user
    _local_user = name


def _actor() -> str:
    """Who changes an alert: the IAM caller's ARN in AWS (API Gateway verified the signature),
    else the local user `serve --user` names."""
    request = app.current_request
    identity = (request.context or {}).get("identity") or {} if request is not None else {}
    caller = identity.get("userArn") or identity.get("caller")
    if caller:
        return str(caller)
    if _local_user:
        return _local_user
    raise PermissionError("no caller identity: in AWS call with IAM (SigV4); locally start `serve --user NAME`")


def _alerts(work: Callable[[AlertInbox], Any]) -> Response:
    """Like `_answer`, for the alert routes: 409 for a transition the alert's status refuses, 403
    without an actor, 404 for an unknown alert."""
    def run(inv: Investigator) -> Any:
        if inv.alerts is None:
            raise Unavailable("no alert store is configured (ALERTS_BACKEND=none)")
        return work(inv.alerts)

    try:
        return _answer(run)
    except AlertConflict as exc:
        return _json(409, {"error": str(exc)})
    except AlertNotFound as exc:
        return _json(404, {"error": str(exc)})
    except AlertValueError as exc:
        return _json(400, {"error": str(exc)})
    except PermissionError as exc:
        return _json(403, {"error": str(exc)})


def _found(detail: Any, alert_id: str) -> Any:
    if detail is None:
        raise NotFound(f"no alert {alert_id!r}")
    return detail


def _body() -> bytes | str | None:
    request = app.current_request
    return request.raw_body if request is not None else None


@app.route("/api/alerts", methods=["GET"], authorizer=iam)
def api_alerts() -> Response:
    return _alerts(lambda inbox: alert_api.list_alerts(inbox, p.parse(alert_api.AlertsQuery, _query())))


@app.route("/api/alerts/{alert_id}", methods=["GET"], authorizer=iam)
def api_alert(alert_id: str) -> Response:
    def work(inbox: AlertInbox) -> Any:
        p.parse(p.NoQuery, _query())
        return _found(alert_api.alert_detail(inbox, alert_api.check_alert_id(alert_id)), alert_id)

    return _alerts(work)


@app.route("/api/alerts/{alert_id}/assign", methods=["POST"], authorizer=iam, content_types=["application/json"])
def api_alert_assign(alert_id: str) -> Response:
    def work(inbox: AlertInbox) -> Any:
        body = alert_api.parse_body(alert_api.AssignBody, _body())
        return inbox.assign(alert_api.check_alert_id(alert_id), body.assignee, _actor()).to_dict()

    return _alerts(work)


@app.route("/api/alerts/{alert_id}/verdict", methods=["POST"], authorizer=iam, content_types=["application/json"])
def api_alert_verdict(alert_id: str) -> Response:
    def work(inbox: AlertInbox) -> Any:
        body = alert_api.parse_body(alert_api.VerdictBody, _body())
        return inbox.decide(alert_api.check_alert_id(alert_id), body.verdict, body.note, _actor()).to_dict()

    return _alerts(work)


@app.route("/api/alert-precision", methods=["GET"], authorizer=iam)
def api_alert_precision() -> Response:
    def work(inbox: AlertInbox) -> Any:
        p.parse(p.NoQuery, _query())
        return alert_api.rule_precision(inbox)

    return _alerts(work)


@app.route("/api/openapi.json", methods=["GET"], authorizer=iam)
def api_openapi() -> Response:
    return _json(200, openapi_document())


# --------------------------------------------------------------------------- decisions


def get_decisions() -> DecisionService:
    """Decisions over this container's pipeline (the Kinesis handler's, where both run in one)."""
    global _decisions
    if _decisions is None:
        _decisions = build_decision_service(Settings.from_env(), get_pipeline())
    return _decisions


def use_decisions(service: DecisionService | None) -> None:
    """Answer decisions with this service (`serve`, tests); None: build one at the next request.
    The decision store of a replaced service is closed; its pipeline belongs to the caller."""
    global _decisions, _decision_log
    if _decisions is not None and _decisions is not service:
        _decisions.log.close()
    if _decision_log is not None:
        _decision_log.close()
    _decisions, _decision_log = service, None


def _recent_decisions(limit: int) -> list[dict[str, Any]]:
    """The kept answers: through the decision service where this container decides, else from the
    decision store opened alone (the API function reads them without building a pipeline)."""
    global _decision_log
    if _decisions is not None:
        return _decisions.recent(limit)
    if _decision_log is None:
        _decision_log = decision_log_for(Settings.from_env())
    return recent_decisions(_decision_log, limit)


def _decision_answer(work: Callable[[], Any]) -> Response:
    try:
        return _json(200, work())
    except DecisionError as exc:
        if isinstance(exc, StoreUnavailable):
            app.log.error("decision: %s", exc)
        return _json(exc.status, exc.to_dict())
    except StoreError as exc:  # building the stores
        app.log.error("decision: %s", exc)
        return _json(503, {"error": str(exc), "field": "store"})


@app.route("/api/decisions", methods=["POST"], authorizer=iam, content_types=["application/json"])
def api_decide() -> Response:
    request = app.current_request
    raw = request.raw_body if request is not None else b""
    body = raw.encode() if isinstance(raw, str) else raw
    return _decision_answer(lambda: get_decisions().decide(body))


@app.route("/api/decisions", methods=["GET"], authorizer=iam)
def api_recent_decisions() -> Response:
    limit = _query().get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= 200:
        return _json(400, {"error": "limit: a whole number from 1 to 200", "field": "limit"})
    return _decision_answer(lambda: {"decisions": _recent_decisions(int(limit))})


@app.lambda_function(name="decide")
def decide(event: dict[str, Any], context: Any) -> Any:
    """POST /api/decisions in AWS: its own function and role (infra/chalice-merge.json points the
    route's integration here); the app dispatches the API Gateway event to the route above."""
    return app(event, context)


# --------------------------------------------------------------------------- the web page


@app.route("/", methods=["GET"], authorizer=iam)
def web_page() -> Response:
    return _asset("index.html")


@app.route("/static/{name}", methods=["GET"], authorizer=iam)
def web_static(name: str) -> Response:
    return _asset(unquote(name))


def _asset(name: str) -> Response:
    found = asset(name)
    if found is None:
        return _json(404, {"error": f"no such file: {name[:100]!r}"})
    body, content_type = found
    return Response(body, status_code=200, headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
