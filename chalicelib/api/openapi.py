"""The investigator's API described as OpenAPI 3.0: paths, query parameters (generated from the
routes' pydantic models, so they cannot drift) and the JSON shapes of the answers (written here;
tests/functional/test_api_openapi.py checks real answers against them and the paths against the
app's routes)."""

from __future__ import annotations

from typing import Any

from chalicelib.api import alerts as alert_api
from chalicelib.api import params as p


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


STRING: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
NUMBER: dict[str, Any] = {"type": "number"}
BOOL: dict[str, Any] = {"type": "boolean"}
CURSOR = _nullable({"type": "string", "description": "pass as `cursor` for the next page; null on the last"})


def _obj(required: dict[str, Any], optional: dict[str, Any] | None = None, *, open_: bool = False) -> dict[str, Any]:
    return {"type": "object", "required": sorted(required), "properties": {**required, **(optional or {})},
            "additionalProperties": open_}


def _page(item: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return _obj({"items": {"type": "array", "items": item}, "next_cursor": CURSOR, **extra})


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": _obj({"error": STRING}),
    "Health": _obj({"status": {"type": "string", "enum": ["ok"]}, "ruleset_version": STRING,
                    "timeseries": _nullable(STRING), "graph": _nullable(STRING),
                    "graph_counts": _nullable(_obj({"vertices": INT, "edges": INT}))}),
    "Rule": _obj({"id": STRING, "kind": STRING, "mode": {"type": "string", "enum": ["enforce", "shadow"]},
                  "severity": STRING, "description": _nullable(STRING), "key": STRING,
                  "window_seconds": _nullable(NUMBER), "graph": BOOL, "quarantined": BOOL,
                  "edge": _obj({"label": STRING, "from": STRING, "to": STRING})}),
    "Rules": _obj({"version": STRING, "source": STRING, "loaded_at": _nullable(STRING),
                   "last_rejected": _nullable(_obj({"at": STRING, "reason": STRING, "stamp": STRING,
                                                    "kept_version": STRING})),
                   "rules": {"type": "array", "items": _ref("Rule")}}),
    "Hit": _obj({"hit_id": STRING, "rule_id": STRING, "kind": STRING, "mode": STRING, "severity": STRING,
                 "event_id": STRING, "account_id": STRING, "ts": STRING, "value": NUMBER, "threshold": NUMBER,
                 "ruleset_version": STRING, "label": STRING, "from_label": STRING, "from": STRING,
                 "to_label": STRING, "to": STRING, "evidence": {"type": "object"}}),
    "HitPage": _page(_ref("Hit")),
    "HitRates": _page(_obj({"bucket_start": STRING, "total": INT,
                            "counts": {"type": "object", "additionalProperties": INT}}),
                      bucket_seconds=INT, rules={"type": "array", "items": STRING}),
    "TopAccounts": _page(_obj({"account_id": STRING, "hits": INT, "rules": INT, "last_ts": STRING})),
    "Activity": _page(_obj({"seq": INT, "event_id": STRING, "ts": STRING, "account_id": STRING, "amount": STRING},
                           open_=True), account=STRING),
    "Aggregates": _obj({"account": STRING, "as_of_event": STRING, "as_of": STRING, "ruleset_version": STRING,
                        "items": {"type": "array", "items": _obj(
                            {"rule_id": STRING, "kind": STRING, "mode": STRING,
                             "verdict": {"type": "string", "enum": ["fires", "no hit", "not judged"]},
                             "reason": STRING},
                            {"key_field": _nullable(STRING), "key_value": _nullable(STRING),
                             "window_start": _nullable(STRING), "window_end": _nullable(STRING),
                             "aggregate": {"nullable": True}, "threshold": {"nullable": True},
                             "contributing_count": _nullable(INT), "evidence": {"type": "object"}})}}),
    "Neighbourhood": _obj({
        "account": STRING, "truncated": BOOL,
        "nodes": {"type": "array", "items": _obj({"id": STRING, "type": STRING, "key": STRING},
                                                 {"hops": INT, "hits": INT, "center": BOOL})},
        "edges": {"type": "array", "items": _obj(
            {"source": STRING, "target": STRING, "label": STRING, "hit": BOOL},
            {"rule_id": STRING, "mode": STRING, "severity": STRING, "count": INT, "last_ts": STRING})}}),
    "Rings": _page(_obj({"accounts": {"type": "array", "items": STRING}, "size": INT, "evidence": NUMBER,
                         "cohesion": NUMBER,
                         "identifiers": {"type": "array", "items": _obj(
                             {"label": STRING, "key": STRING, "accounts": {"type": "array", "items": STRING}})}}),
                   total=INT),
}

ALERT = _obj({"alert_id": STRING, "account_id": STRING,
              "status": {"type": "string", "enum": ["open", "assigned", "closed"]},
              "first_hit_ts": STRING, "last_hit_ts": STRING, "hit_count": INT,
              "severity": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
              "rules": {"type": "array", "items": STRING}, "opened_at": STRING, "updated_at": STRING,
              "assignee": _nullable(STRING),
              "verdict": _nullable({"type": "string", "enum": ["fraud", "legit", "unsure"]}),
              "note": _nullable(STRING), "closed_at": _nullable(STRING), "quiet_until": _nullable(STRING),
              "version": INT})
SCHEMAS.update({
    "Alert": ALERT,
    "AlertPage": _page(_ref("Alert")),
    "AlertDetail": _obj({
        "alert": _ref("Alert"),
        "hits": {"type": "array", "items": _obj({"hit_id": STRING, "account_id": STRING, "rule_id": STRING,
                                                 "severity": STRING, "ts": STRING, "event_id": STRING})},
        "audit": {"type": "array", "items": _obj({"alert_id": STRING, "at": STRING, "actor": STRING,
                                                  "action": {"type": "string",
                                                             "enum": ["opened", "hit", "assigned", "verdict"]},
                                                  "changes": {"type": "object"}, "version": INT})},
        "notification": _nullable(_obj({"status": {"type": "string", "enum": ["pending", "sent", "failed"]},
                                        "attempts": INT, "next_attempt_at": STRING,
                                        "last_error": _nullable(STRING)}))}),
    "AlertPrecision": _obj({"items": {"type": "array", "items": _obj(
        {"rule_id": STRING, "fraud": INT, "legit": INT, "unsure": INT, "precision": _nullable(NUMBER)})}}),
})

# The decision route (POST) and its recent answers (GET): not read-only, so described apart.
_HIT_RECORD = _obj({"hit_id": STRING, "rule_id": STRING, "kind": STRING, "mode": STRING, "severity": STRING,
                    "event_id": STRING, "ts": STRING, "account_id": STRING, "key": STRING, "key_value": STRING,
                    "value": NUMBER, "threshold": NUMBER, "ruleset_version": STRING,
                    "edge": {"type": "object"}, "evidence": {"type": "object"}})
SCHEMAS.update({
    "Decision": _obj({
        "event_id": STRING, "decision": {"type": "string", "enum": ["approve", "review", "decline"]},
        "ruleset_version": STRING, "hits": {"type": "array", "items": _HIT_RECORD},
        "rules": {"type": "array", "items": _obj({
            "rule_id": STRING, "mode": {"type": "string", "enum": ["enforce", "shadow"]},
            "verdict": {"type": "string", "enum": ["hit", "no_hit", "not_judged"]},
            "value": _nullable(NUMBER), "threshold": _nullable(NUMBER)})},
        "took_ms": NUMBER}),
    "Decisions": _obj({"decisions": {"type": "array", "items": _ref("Decision")}}),
    "DecisionError": _obj({"error": STRING, "field": STRING}),
})
_TRANSACTION = _obj({"event_id": STRING, "account_id": STRING, "amount": {"type": ["number", "string"]},
                     "ts": STRING}, open_=True)
DECISION_ERRORS = {400: "not a valid transaction (the field is named)", 413: "body over the record limit",
                   503: "a store cannot answer"}


def decision_paths() -> dict[str, Any]:
    def errors(statuses: tuple[int, ...]) -> dict[str, Any]:
        return {str(s): {"description": DECISION_ERRORS[s], "content": {
            "application/json": {"schema": _ref("DecisionError")}}} for s in statuses}

    ok = {"description": "OK", "content": {"application/json": {"schema": _ref("Decision")}}}
    listed = {"description": "OK", "content": {"application/json": {"schema": _ref("Decisions")}}}
    return {"/api/decisions": {
        "post": {"summary": "Approve, review or decline one transaction before it settles (stores it as the "
                            "stream would; a repost of the same event_id returns the first answer)",
                 "operationId": "api_decisions_post", "parameters": [],
                 "requestBody": {"required": True, "content": {"application/json": {"schema": _TRANSACTION}}},
                 "responses": {"200": ok, **errors((400, 413, 503))}},
        "get": {"summary": "Recent decisions, newest first", "operationId": "api_decisions",
                "parameters": [{"name": "limit", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}}],
                "responses": {"200": listed, **errors((400, 503))}}}}


ACCOUNT = {"name": "account", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 200}}
#: path -> (summary, query model or None, path parameters, answer schema, error statuses)
API_ROUTES: dict[str, tuple[str, type[Any] | None, list[dict[str, Any]], str, tuple[int, ...]]] = {
    "/api/health": ("Health and the ruleset version in force", None, [], "Health", (503,)),
    "/api/rules": ("The rules in force: version, loaded when, the last rejected edit and why", None, [], "Rules",
                   (503,)),
    "/api/hits": ("Hits by rule, account, mode and time range, newest first", p.HitsQuery, [], "HitPage",
                  (400, 503)),
    "/api/hit-rates": ("Hits per rule per time bucket, newest bucket first", p.RatesQuery, [], "HitRates",
                       (400, 503)),
    "/api/top-accounts": ("The accounts with the most hits", p.TopAccountsQuery, [], "TopAccounts", (400, 503)),
    "/api/accounts/{account}/activity": ("An account's events, newest first", p.ActivityQuery, [ACCOUNT],
                                         "Activity", (400, 503)),
    "/api/accounts/{account}/aggregates": ("Every rule's window aggregate as of the account's latest event",
                                           p.NoQuery, [ACCOUNT], "Aggregates", (400, 404, 503)),
    "/api/accounts/{account}/hits": ("An account's hits, newest first", p.AccountHitsQuery, [ACCOUNT], "HitPage",
                                     (400, 503)),
    "/api/accounts/{account}/neighbourhood": ("An account's neighbourhood: nodes and edges, hit edges marked",
                                              p.NeighbourhoodQuery, [ACCOUNT], "Neighbourhood", (400, 404, 503)),
    "/api/rings": ("Groups of accounts linked by shared identifiers, most cohesive first", p.RingsQuery, [], "Rings",
                   (400, 503)),
}
ALERT_ID = {"name": "alert_id", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
#: (method, path) -> (summary, query or body model, path parameters, answer schema, error statuses)
ALERT_ROUTES: dict[tuple[str, str], tuple[str, type[Any] | None, list[dict[str, Any]], str, tuple[int, ...]]] = {
    ("get", "/api/alerts"): ("The alert inbox: most severe first, then newest", alert_api.AlertsQuery, [],
                             "AlertPage", (400, 503)),
    ("get", "/api/alerts/{alert_id}"): ("One alert with its hits, audit trail and notification", p.NoQuery,
                                        [ALERT_ID], "AlertDetail", (400, 404, 503)),
    ("post", "/api/alerts/{alert_id}/assign"): ("Assign an open alert (the caller is recorded as the actor)",
                                                alert_api.AssignBody, [ALERT_ID], "Alert",
                                                (400, 403, 404, 409, 503)),
    ("post", "/api/alerts/{alert_id}/verdict"): ("Give the verdict (fraud, legit, unsure) and close the alert",
                                                 alert_api.VerdictBody, [ALERT_ID], "Alert",
                                                 (400, 403, 404, 409, 503)),
    ("get", "/api/alert-precision"): ("Per rule: how its decided alerts were judged, and precision", p.NoQuery,
                                      [], "AlertPrecision", (400, 503)),
}
ERROR_DESCRIPTIONS = {400: "bad parameter", 403: "no caller identity", 404: "not found",
                      409: "the alert's status refuses the change", 503: "store unavailable"}
PAGE_ROUTES = {"/": "The investigator's web page", "/static/{name}": "The page's script and style sheet",
               "/api/openapi.json": "This document"}


def query_parameters(model: type[Any] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema()
    out = []
    for name, prop in schema["properties"].items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        if "anyOf" in prop:  # X | None: optional X
            prop = {**next(s for s in prop.pop("anyOf") if s.get("type") != "null"), **prop}
        if prop.get("type") == "array":
            prop["default"] = ",".join(prop.get("default", []))
            prop = {"type": "string", "description": "comma-separated: " + ", ".join(prop["items"]["enum"]),
                    "default": prop["default"]}
        if prop.get("default") is None:
            prop.pop("default", None)
        out.append({"name": name, "in": "query", "required": False, "schema": prop})
    return out


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, (summary, model, path_params, answer, errors) in API_ROUTES.items():
        responses: dict[str, Any] = {"200": {"description": "OK", "content": {
            "application/json": {"schema": _ref(answer)}}}}
        for status in errors:
            responses[str(status)] = {"description": {400: "bad parameter", 404: "not found",
                                                      503: "store unavailable"}[status],
                                      "content": {"application/json": {"schema": _ref("Error")}}}
        paths[path] = {"get": {"summary": summary, "operationId": path.strip("/").replace("/", "_"),
                               "parameters": path_params + query_parameters(model), "responses": responses}}
    for (method, path), (summary, model, path_params, answer, errors) in ALERT_ROUTES.items():
        responses = {"200": {"description": "OK", "content": {"application/json": {"schema": _ref(answer)}}}}
        for status in errors:
            responses[str(status)] = {"description": ERROR_DESCRIPTIONS[status],
                                      "content": {"application/json": {"schema": _ref("Error")}}}
        operation: dict[str, Any] = {"summary": summary, "parameters": list(path_params), "responses": responses,
                                     "operationId": f"{method}_" + path.strip("/").replace("/", "_")
                                     .replace("{", "").replace("}", "")}
        if method == "post":
            assert model is not None
            body = {k: v for k, v in model.model_json_schema().items() if k != "title"}
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        else:
            operation["parameters"] += query_parameters(model)
        paths.setdefault(path, {})[method] = operation

    paths.update(decision_paths())
    for path, summary in PAGE_ROUTES.items():
        params = [{"name": "name", "in": "path", "required": True, "schema": STRING}] if "{name}" in path else []
        responses = {"200": {"description": "OK"}}
        if params:
            responses["404"] = {"description": "no such file",
                                "content": {"application/json": {"schema": _ref("Error")}}}
        paths[path] = {"get": {"summary": summary, "operationId": path.strip("/").replace("/", "_") or "page",
                               "parameters": params, "responses": responses}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "fraud-rules investigator API", "version": "1",
                 "description": "Read-only but for the alert transitions and POST /api/decisions. In AWS "
                                "every route needs IAM (SigV4) authorization; the read-only role may not "
                                "call the alert transitions."},
        "security": [{"sigv4": []}],
        "components": {"schemas": SCHEMAS, "securitySchemes": {"sigv4": {
            "type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "awsSigv4"}}},
        "paths": paths,
    }
