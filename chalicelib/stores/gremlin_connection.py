"""Gremlin connections the GraphStore runs on: gremlite (embedded) and Amazon Neptune.

Neptune: one `DriverRemoteConnection` per warm container over wss, with IAM SigV4 headers for
`neptune-db` signed by botocore; a dropped socket is answered by reconnecting (freshly signed)
with backoff, and ConcurrentModificationException by retrying with jittered backoff. Both are
safe because every write the GraphStore sends is an idempotent upsert.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from gremlin_python.driver.remote_connection import RemoteConnection, RemoteTraversal
from gremlin_python.process.anonymous_traversal import traversal

from chalicelib.retry import Backoff
from chalicelib.stores.exceptions import StoreError, TransientStoreError

log = logging.getLogger(__name__)

Want = Literal["list", "iterate"]


class GraphConnection(ABC):
    """A traversal source plus transaction control, with vendor errors turned into ours."""

    g: Any

    def run(self, t: Any, want: Want = "list") -> Any:
        """Execute a traversal built from `self.g`; raise StoreError / TransientStoreError."""
        try:
            if want == "iterate":
                t.iterate()
                return None
            return t.to_list()
        except StoreError:
            raise
        except Exception as exc:
            raise self._translate(exc) from exc

    @abstractmethod
    def _translate(self, exc: Exception) -> StoreError: ...

    def begin(self) -> None:  # noqa: B027 - only engines with transactions need it
        """Open the batch's write transaction (before its first read-then-write), where the engine
        has one; idempotent until commit/rollback."""

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class GremliteConnection(GraphConnection):
    """The embedded graph: a SQLite file through gremlite. Nothing is saved until `commit()`.
    One connection per thread (gremlite's rule)."""

    def __init__(self, path: str | Path, timeout_s: float = 10.0) -> None:
        from gremlite import SQLiteConnection

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            _initialize_once(self.path, timeout_s)
            self.remote = SQLiteConnection(str(self.path), timeout=timeout_s)
        except Exception as exc:
            raise self._translate(exc) from exc
        self.g = traversal().with_remote(self.remote)

    def _translate(self, exc: Exception) -> StoreError:
        text = str(exc).lower()
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return TransientStoreError(f"graph store busy: {exc}")
        return StoreError(f"graph store failed: {type(exc).__name__}: {exc}")

    def begin(self) -> None:
        """`BEGIN IMMEDIATE`: a coalesce upsert reads before it writes, so two processes that both
        read "missing" would both create the element; taking the write lock first serialises them."""
        con = self.remote.con
        if not con.in_transaction:
            try:
                con.execute("BEGIN IMMEDIATE")
            except Exception as exc:
                raise self._translate(exc) from exc

    def commit(self) -> None:
        try:
            self.remote.commit()
        except Exception as exc:
            raise self._translate(exc) from exc

    def rollback(self) -> None:
        self.remote.rollback()

    def close(self) -> None:
        self.remote.close()


def _initialize_once(path: Path, timeout_s: float) -> None:
    """Create gremlite's tables in one transaction under the write lock. Left to gremlite, two
    processes opening a new file at once both create them (one fails: "table quads already
    exists", or sees half of them: BadDatabase), and a process killed half-way leaves a file no
    one can open."""
    from gremlite.connection import db_already_initialized, initialize_db

    con = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None)
    try:
        # First a look without the write lock (one read transaction, so one consistent schema):
        # a writer busy with batches must not keep a process that is only starting waiting.
        con.execute("BEGIN")
        initialized = db_already_initialized(con)
        con.execute("ROLLBACK")
        if initialized:
            return
        con.execute("BEGIN IMMEDIATE")
        if db_already_initialized(con):
            con.execute("ROLLBACK")
        else:
            initialize_db(con)  # commits
    finally:
        con.close()


# --------------------------------------------------------------------------- Neptune


@dataclass(frozen=True)
class NeptuneSettings:
    endpoint: str
    port: int = 8182
    region: str = "us-east-1"
    iam_auth: bool = True

    @property
    def url(self) -> str:
        return f"wss://{self.endpoint}:{self.port}/gremlin"


def sigv4_headers(url: str, region: str, credentials: Any, now: datetime | None = None) -> dict[str, str]:
    """IAM SigV4 headers for Neptune's WebSocket handshake (service `neptune-db`), signed by
    botocore for the given clock (now by default)."""
    from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
    from botocore.awsrequest import AWSRequest

    https_url = url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    request = AWSRequest(method="GET", url=https_url, data=None)
    signer = SigV4Auth(credentials, "neptune-db", region)
    # SigV4Auth.add_auth reads the wall clock; these are its steps with the clock passed in.
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    request.context["timestamp"] = stamp.strftime(SIGV4_TIMESTAMP)
    signer._modify_request_before_signing(request)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)
    headers = {name: str(value) for name, value in request.headers.items()}
    headers["Host"] = urlsplit(https_url).netloc  # signed over; sent explicitly so no client differs
    return headers


def is_concurrent_modification(exc: BaseException) -> bool:
    return "ConcurrentModificationException" in str(exc)


def is_dropped_connection(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return True
    name = type(exc).__name__
    text = str(exc).lower()
    return name in ("ClientConnectionError", "ServerDisconnectedError", "WSServerHandshakeError") or (
        "connection" in text and ("closed" in text or "reset" in text or "lost" in text))


RetryPolicy = Backoff  # the project's one retry policy (chalicelib/retry.py)
DEFAULT_RETRY = RetryPolicy()


class RetryingRemote(RemoteConnection):  # type: ignore[misc]
    """A RemoteConnection that reconnects after a dropped socket and retries on
    ConcurrentModificationException, with jittered exponential backoff.

    `connect` builds a fresh underlying connection (for Neptune: a new, freshly signed
    DriverRemoteConnection); it is called once up front and again after each drop."""

    def __init__(self, connect: Callable[[], Any], policy: RetryPolicy = DEFAULT_RETRY,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        super().__init__("retrying", "g")
        self._connect = connect
        self._policy = policy
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.remote = connect()
        self.reconnects = 0
        self.retries = 0

    def submit(self, bytecode: Any) -> RemoteTraversal:
        for attempt in range(self._policy.attempts):
            last = attempt == self._policy.attempts - 1
            try:
                return self.remote.submit(bytecode)
            except Exception as exc:
                if is_concurrent_modification(exc) and not last:
                    self.retries += 1
                    log.warning("graph write conflicted (attempt %d), retrying: %s", attempt + 1, exc)
                elif is_dropped_connection(exc) and not last:
                    self.reconnects += 1
                    log.warning("graph connection dropped (attempt %d), reconnecting: %s", attempt + 1, exc)
                    self._close_quietly()
                    self.remote = self._connect()
                else:
                    raise
            self._sleep(self._policy.delay(attempt, self._rng))
        raise AssertionError("unreachable")

    def is_closed(self) -> bool:
        return False

    def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):  # the socket is already gone
            self.remote.close()

    def close(self) -> None:
        self._close_quietly()


class NeptuneConnection(GraphConnection):
    """Amazon Neptune over wss with IAM auth. Each traversal commits on its own."""

    def __init__(self, settings: NeptuneSettings, *, credentials: Callable[[], Any] | None = None,
                 driver: Callable[..., Any] | None = None, policy: RetryPolicy = DEFAULT_RETRY,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self._credentials = credentials or _session_credentials
        self._driver = driver or _driver_remote_connection
        self.remote = RetryingRemote(self._open, policy, sleep)
        self.g = traversal().with_remote(self.remote)

    def _open(self) -> Any:
        headers: Mapping[str, str] | None = None
        if self.settings.iam_auth:
            headers = sigv4_headers(self.settings.url, self.settings.region, self._credentials())
        return self._driver(self.settings.url, "g", headers=headers)

    def _translate(self, exc: Exception) -> StoreError:
        if is_concurrent_modification(exc) or is_dropped_connection(exc):
            return TransientStoreError(f"neptune unavailable after retries: {exc}")
        return StoreError(f"neptune failed: {type(exc).__name__}: {exc}")

    def commit(self) -> None:
        """Neptune commits each traversal (sessionless requests)."""

    def rollback(self) -> None:
        """Nothing to roll back: every write is an idempotent upsert that was committed alone."""

    def close(self) -> None:
        self.remote.close()


def _session_credentials() -> Any:
    import botocore.session

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise StoreError("no AWS credentials for Neptune IAM auth: run inside Lambda or set AWS_* variables")
    return credentials.get_frozen_credentials()


def _driver_remote_connection(url: str, source: str, headers: Mapping[str, str] | None) -> Any:
    from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection

    return DriverRemoteConnection(url, source, headers=dict(headers) if headers else None)
