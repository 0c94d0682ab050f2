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
ROUTES = sorted(DOCUMENT["paths"])
HUGE_INTS = st.one_of(st.integers(), st.sampled_from([-1, 0, 2**31, 2**53, 2**63, 2**64, 10**30, 10**400 // 10**370]))


def crafted_cursor() -> st.SearchStrategy[str]:
    """base64url JSON as the API issues it, holding what the API would never issue."""
    position: st.SearchStrategy[Any] = st.one_of(
        HUGE_INTS, st.floats(allow_nan=False), st.text(max_size=20), st.none(), st.booleans(),
        st.lists(st.one_of(st.text(max_size=30), HUGE_INTS), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
    return position.map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode().rstrip("="))


def times() -> st.SearchStrategy[str]:
    edge = st.sampled_from(["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59-14:00",
                            "9999-12-31T23:59:59.999999Z", "2026-11-28T16:45:20Z", "1970-01-01", "-1", "1e308"])
    return st.one_of(edge, st.datetimes().map(lambda d: d.isoformat()),
                     st.tuples(st.datetimes(), st.integers(-23, 23)).map(lambda t: f"{t[0].isoformat()}{t[1]:+03d}:00"))


def value_for(parameter: dict[str, Any]) -> st.SearchStrategy[str]:
    schema = parameter["schema"]
    anything = st.text(max_size=40)
    if parameter["name"] == "cursor":
        base64url = st.text(alphabet=string.ascii_letters + string.digits + "-_=", max_size=600)
        return st.one_of(crafted_cursor(), anything, base64url)
    if schema.get("format") == "date-time":
        return st.one_of(times(), anything)
    if schema.get("type") == "integer":
        return st.one_of(HUGE_INTS.map(str), anything)
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), anything)
    return anything


@st.composite
def requests(draw: st.DrawFn) -> str:
    """A URL of one documented route: path values and a random subset of its query parameters."""
    path = draw(st.sampled_from(ROUTES))
    parameters = DOCUMENT["paths"][path]["get"]["parameters"]
    for parameter in parameters:
        if parameter["in"] == "path":
            raw = draw(st.one_of(st.text(min_size=1, max_size=210), st.sampled_from(["ünï 1", "a/b", "x?y#z", "%00"])))
            path = path.replace("{" + parameter["name"] + "}", quote(raw, safe=""))
    query = {p["name"]: draw(value_for(p)) for p in parameters if p["in"] == "query" and draw(st.booleans())}
    if draw(st.booleans()) and draw(st.booleans()):
        query[draw(st.text(min_size=1, max_size=10))] = draw(st.text(max_size=10))
    return path + ("?" + urlencode(query) if query else "")


def test_no_parameter_of_any_route_gives_a_server_error(investigator: Investigator) -> None:  # noqa: F811
    app_module.use_investigator(investigator)
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")

    @given(url=requests())
    def check(url: str) -> None:
        response = client.http.get(url)
        assert response.status_code < 500, (url, response.status_code, response.body[:300])
        if response.status_code >= 400:
            route = next(path for path in ROUTES if _matches(path, url))
            assert str(response.status_code) in DOCUMENT["paths"][route]["get"]["responses"], (url, response.body)
            assert json.loads(response.body)["error"], url

    try:
        with Client(app_module.app) as client:
            check()
    finally:
        app_module.use_investigator(None)


def _matches(route: str, url: str) -> bool:
    route_parts, url_parts = route.split("/"), url.split("?", 1)[0].split("/")
    return len(route_parts) == len(url_parts) and all(
        r == u or r.startswith("{") for r, u in zip(route_parts, url_parts, strict=True))


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
