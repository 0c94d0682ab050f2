"""The InfluxDB v1 HTTP API as the store reaches it: where the server is and how to authenticate
(`InfluxConnection`), the HTTP client (urllib3's pool, or a fake in tests) and how the server's
error answers are read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


class HttpResponse(Protocol):
    status: int
    data: bytes
    headers: Mapping[str, str]


class HttpClient(Protocol):
    """What the store needs of `urllib3.PoolManager` (tests may pass a fake)."""

    def request(self, method: str, url: str, *, body: bytes | None = ..., headers: Mapping[str, str] | None = ...,
                timeout: Any = ..., retries: Any = ...) -> HttpResponse: ...


@dataclass(frozen=True)
class InfluxConnection:
    """Where the server is and how to authenticate: a token (2.x/3.x, `Authorization: Token`)
    or a user name and password (1.x, 2.x v1 authorizations; HTTP basic auth)."""

    url: str
    database: str
    retention_policy: str = ""
    token: str = ""
    username: str = ""
    password: str = ""
    timeout_s: float = 10.0
    ca_bundle: str = ""  # a PEM file to trust instead of the system CAs

    def __repr__(self) -> str:  # never show credentials in logs or tracebacks
        return f"InfluxConnection(url={self.url!r}, database={self.database!r}, rp={self.retention_policy!r})"

    def auth_headers(self) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"Token {self.token}"}
        if self.username:
            import base64

            pair = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
            return {"Authorization": f"Basic {pair}"}
        return {}


def default_http(connection: InfluxConnection) -> HttpClient:
    import urllib3

    kwargs: dict[str, Any] = {"maxsize": 4, "timeout": urllib3.Timeout(connect=min(5.0, connection.timeout_s),
                                                                      read=connection.timeout_s)}
    if connection.ca_bundle:
        kwargs["ca_certs"] = connection.ca_bundle
    return urllib3.PoolManager(**kwargs)  # type: ignore[return-value]


def _error_text(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text[:500]
    if isinstance(parsed, dict):
        return str(parsed.get("error") or parsed.get("message") or text)[:500]
    return text[:500]


def _seconds(text: str | None) -> float:
    try:
        return float(text) if text else 0.0
    except ValueError:
        return 0.0
