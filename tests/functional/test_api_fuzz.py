"""Every route of the investigator's API, every parameter the OpenAPI document lists, fuzzed through
chalice.test.Client: whatever a caller sends (crafted cursors, times out of range, odd path
values), the answer is never a 5xx, and a refusal is a documented 4xx with a reason."""

from __future__ import annotations

import base64
import json
import string
import warnings
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from chalice.test import Client
from hypothesis import given
from hypothesis import strategies as st

import app as app_module
from chalicelib.api import Investigator
from chalicelib.api.openapi import openapi_document
from tests.functional.test_api import data_dir, investigator  # noqa: F401 - fixtures

DOCUMENT = openapi_document()
ROUTES = sorted(route for route, operations in DOCUMENT["paths"].items() if "get" in operations)
#: (route, parameter) pairs: each documented parameter of each GET route gets its own run, always sent
FOCUS = [(route, parameter["name"]) for route in ROUTES for parameter in DOCUMENT["paths"][route]["get"]["parameters"]]
#: the routes that change something, but the decision route (its bodies: tests/functional/test_decisions.py,
#: every record of the hostile corpus)
POST_ROUTES = sorted(route for route, operations in DOCUMENT["paths"].items()
                     if "post" in operations and route != "/api/decisions")
EDGE_INTS = st.sampled_from([-1, 0, 2**31, 2**53, 2**62, 2**63, 2**64, 10**21, 10**30, 253_402_300_800_000])
INTS = st.one_of(EDGE_INTS, st.integers())
#: times a datetime parser accepts that are outside years 1-9999 once in UTC, and other edges
EDGE_TIMES = st.sampled_from(["0001-01-01T00:00:00+14:00", "0001-01-01T05:00:00+10:00", "9999-12-31T23:59:59-14:00",
                              "9999-12-31T20:00:00-05:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59.999999Z",
                              "1970-01-01", "-1", "1e308"])


def as_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def crafted_cursor() -> st.SearchStrategy[str]:
    """base64url JSON as the API issues it, holding what the API would never issue."""
    position: st.SearchStrategy[Any] = st.one_of(
        INTS, st.floats(allow_nan=False), st.text(max_size=20), st.none(), st.booleans(),
        st.lists(st.one_of(st.text(max_size=30), INTS), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
    return position.map(as_cursor)


def times() -> st.SearchStrategy[str]:
    return st.one_of(EDGE_TIMES, st.datetimes().map(lambda d: d.isoformat()),
                     st.tuples(st.datetimes(), st.integers(-23, 23)).map(lambda t: f"{t[0].isoformat()}{t[1]:+03d}:00"))


def value_for(parameter: dict[str, Any]) -> st.SearchStrategy[str]:
    schema = parameter["schema"]
    anything = st.text(max_size=40)
    if parameter["in"] == "path":
        return st.one_of(st.text(min_size=1, max_size=210), st.sampled_from(["ünï 1", "a/b", "x?y#z", "%00", "%FF"]))
    if parameter["name"] == "cursor":
        base64url = st.text(alphabet=string.ascii_letters + string.digits + "-_=", max_size=600)
        return st.one_of(INTS.map(as_cursor), crafted_cursor(), anything, base64url)
    if schema.get("format") == "date-time":
        return st.one_of(times(), anything)
    if schema.get("type") == "integer":
        return st.one_of(INTS.map(str), anything)
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), anything)
    return anything


@st.composite
def requests(draw: st.DrawFn, route: str, focus: str) -> str:
    """A URL of `route` with a fuzzed `focus` parameter, its path values and a random subset of its
    other query parameters (sometimes one it does not have)."""
    path = route
    query = {}
    for parameter in DOCUMENT["paths"][route]["get"]["parameters"]:
        if parameter["name"] != focus and (parameter["in"] != "path" and not draw(st.booleans())):
            continue
        value = draw(value_for(parameter))
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", quote(value, safe=""))
        else:
            query[parameter["name"]] = value
    if draw(st.integers(0, 3)) == 0:
        query[draw(st.text(min_size=1, max_size=10))] = draw(st.text(max_size=10))
    return path + ("?" + urlencode(query) if query else "")


def assert_documented(response: Any, operation: dict[str, Any], request: Any) -> None:
    """Never a 5xx; a refusal is one of the operation's documented answers, with a reason."""
    assert response.status_code < 500, (request, response.status_code, response.body[:300])
    if response.status_code >= 400:
        assert str(response.status_code) in operation["responses"], (request, response.body)
        assert json.loads(response.body)["error"], request


@pytest.mark.parametrize(("route", "focus"), FOCUS, ids=[f"{r} {f}" for r, f in FOCUS])
def test_no_parameter_of_any_route_gives_a_server_error(investigator: Investigator,  # noqa: F811
                                                        route: str, focus: str) -> None:
    app_module.use_investigator(investigator)
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")
    operation = DOCUMENT["paths"][route]["get"]

    @given(url=requests(route, focus))
    def check(url: str) -> None:
        assert_documented(client.http.get(url), operation, url)

    try:
        with Client(app_module.app) as client:
            check()
    finally:
        app_module.use_investigator(None)


@pytest.mark.parametrize("url", [
    "/api/hit-rates?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",  # the cursor: 999999999999999999999
    "/api/top-accounts?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
    "/api/top-accounts?cursor=" + base64.urlsafe_b64encode(b"9223372036854775808").decode().rstrip("="),
    "/api/hit-rates?cursor=" + base64.urlsafe_b64encode(b"4611686018427387904").decode().rstrip("="),
    "/api/rings?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
    "/api/accounts/1234-5678-20/activity?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
    "/api/hits?since=0001-01-01T00:00:00%2B14:00",
    "/api/hit-rates?until=0001-01-01T00:00:00%2B01:00",
])
def test_a_crafted_cursor_or_time_is_a_400_with_a_reason(investigator: Investigator, url: str) -> None:  # noqa: F811
    app_module.use_investigator(investigator)
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")
    try:
        with Client(app_module.app) as client:
            response = client.http.get(url)
    finally:
        app_module.use_investigator(None)
    assert response.status_code == 400, (url, response.body)
    reason = json.loads(response.body)["error"]
    assert reason.startswith(("cursor:", "since:", "until:")), reason


JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                     st.text(max_size=300)),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                                      max_size=3), max_leaves=8)


@st.composite
def post_requests(draw: st.DrawFn, route: str) -> tuple[str, bytes]:
    """A path of `route` with fuzzed path values, and a body: the documented fields with any JSON
    values (sometimes an extra field), any JSON, or bytes that are not JSON."""
    path = route
    for parameter in DOCUMENT["paths"][route]["post"]["parameters"]:
        path = path.replace("{" + parameter["name"] + "}", quote(draw(value_for(parameter)), safe=""))
    fields = list(DOCUMENT["paths"][route]["post"]["requestBody"]["content"]["application/json"]["schema"]
                  .get("properties", {}))
    documented = st.fixed_dictionaries({}, optional={name: JSON_VALUES for name in [*fields, "extra"]})
    body = draw(st.one_of(documented.map(lambda d: json.dumps(d).encode()), JSON_VALUES.map(lambda v: json.dumps(v)
                          .encode()), st.binary(max_size=100)))
    return path, body


@pytest.mark.parametrize("route", POST_ROUTES)
def test_no_body_or_path_value_of_a_changing_route_gives_a_server_error(investigator: Investigator,  # noqa: F811
                                                                         route: str) -> None:
    app_module.use_investigator(investigator)
    app_module.use_local_user("fuzzer")
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")
    operation = DOCUMENT["paths"][route]["post"]

    @given(request=post_requests(route))
    def check(request: tuple[str, bytes]) -> None:
        url, body = request
        assert_documented(client.http.post(url, body=body, headers={"Content-Type": "application/json"}),
                          operation, (url, body))

    try:
        with Client(app_module.app) as client:
            check()
    finally:
        app_module.use_investigator(None)
        app_module.use_local_user(None)
