"""The OpenAPI document against the app: the same paths and methods as the routes, IAM
authorization on every route, and real answers (happy and error) valid against its schemas."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from chalice.app import IAMAuthorizer
from chalice.test import Client

import app as app_module
from chalicelib.api.openapi import API_ROUTES, openapi_document
from tests.functional.test_api import all_hits, client, data_dir, investigator  # noqa: F401 - fixtures

DOCUMENT = openapi_document()
EXAMPLES = {
    "/api/health": [""], "/api/rules": [""],
    "/api/hits": ["?limit=2", "?rule=high-value-5m&mode=enforce&limit=1", "?limit=0"],
    "/api/hit-rates": ["?bucket_seconds=1", "?bucket_seconds=-1"],
    "/api/top-accounts": ["?limit=3", "?limit=x"],
    "/api/accounts/{account}/activity": ["?limit=2", "?limit=9999"],
    "/api/accounts/{account}/aggregates": ["", "?x=1"],
    "/api/accounts/{account}/hits": ["?limit=2", "?mode=x"],
    "/api/accounts/{account}/neighbourhood": ["?hops=1", "?hops=9"],
    "/api/rings": ["?limit=2", "?via=nope"],
}


def json_schema(schema: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: refs resolved, `nullable` as a null type."""
    if isinstance(schema, list):
        return [json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return json_schema(DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    out = {k: json_schema(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def test_the_document_lists_exactly_the_apps_routes() -> None:
    routes = {(path, method) for path, methods in app_module.app.routes.items() for method in methods}
    documented = {(path, method.upper()) for path, item in DOCUMENT["paths"].items() for method in item}
    assert routes == documented
    for path, methods in app_module.app.routes.items():
        for method, entry in methods.items():
            declared = [p["name"] for p in DOCUMENT["paths"][path][method.lower()]["parameters"] if p["in"] == "path"]
            assert declared == entry.view_args, path


def test_every_route_requires_iam_authorization() -> None:
    for path, methods in app_module.app.routes.items():
        for method, entry in methods.items():
            assert isinstance(entry.authorizer, IAMAuthorizer), f"{method} {path} is anonymous"
    assert DOCUMENT["security"] == [{"sigv4": []}]


def test_the_document_is_served_and_is_valid_openapi_shaped(client: Client) -> None:  # noqa: F811
    response = client.http.get("/api/openapi.json")
    assert response.status_code == 200 and json.loads(response.body) == json.loads(json.dumps(DOCUMENT))
    assert DOCUMENT["openapi"].startswith("3.0")
    for schema in DOCUMENT["components"]["schemas"].values():
        jsonschema.Draft7Validator.check_schema(json_schema(schema))
    assert set(EXAMPLES) == set(API_ROUTES)


@pytest.mark.parametrize("path", sorted(API_ROUTES))
def test_answers_match_the_documented_shapes(client: Client, path: str) -> None:  # noqa: F811
    operation = DOCUMENT["paths"][path]["get"]
    names = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    statuses = set()
    for query in EXAMPLES[path]:
        given = {part.split("=")[0] for part in query.lstrip("?").split("&") if part}
        assert given <= names | {"x"}, f"example uses undocumented parameters: {given - names}"
        response = client.http.get(path.replace("{account}", "1234-5678-20") + query)
        status = str(response.status_code)
        assert status in operation["responses"], (path, query, status, response.body)
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        jsonschema.validate(json.loads(response.body), json_schema(schema))
        statuses.add(status)
    assert "200" in statuses
