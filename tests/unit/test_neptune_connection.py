"""The Neptune connection up to the wire, without a server: what it sends, how it signs, how it
retries and reconnects."""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials
from gremlin_python.driver.protocol import GremlinServerError
from gremlin_python.driver.remote_connection import RemoteConnection, RemoteTraversal
from gremlin_python.process.anonymous_traversal import traversal
from gremlin_python.process.translator import Translator
from gremlin_python.process.traversal import Traverser

from chalicelib.events import Transaction
from chalicelib.hits import EdgeEnd, Hit, HitEdge
from chalicelib.stores import GraphStore, GremlinGraphStore, GremliteConnection, NeptuneConnection, TransientStoreError
from chalicelib.stores.exceptions import StoreError
from chalicelib.stores.gremlin_connection import NeptuneSettings, RetryingRemote, RetryPolicy, sigv4_headers

NEPTUNE = NeptuneSettings("db.cluster-abc.us-east-1.neptune.amazonaws.com", 8182, "us-east-1")
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "SESSIONTOKEN")
NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


class Recorder(RemoteConnection):  # type: ignore[misc]
    """Stands where the wire is: records every bytecode submitted, then passes it on (or not)."""

    def __init__(self, inner: Any = None, results: Any = ()) -> None:
        super().__init__("recorder", "g")
        self.inner, self.results, self.sent = inner, list(results), []

    def submit(self, bytecode: Any) -> RemoteTraversal:
        self.sent.append(Translator("g").translate(bytecode))
        if self.inner is not None:
            return self.inner.submit(bytecode)
        return RemoteTraversal(iter([Traverser(r) for r in self.results]))

    def close(self) -> None:
        pass


def events() -> list[Transaction]:
    return [Transaction(event_id=f"e{i}", ts=1_800_000_000_000 + i, account_id=f"a{i % 2}", amount=10,
                        email="shared@example.com", ip=f"10.0.0.{i}", merchant_id="m1") for i in range(3)]


def hit() -> Hit:
    return Hit("h1", "r1", "velocity", "enforce", "high", "e0", "2027-01-15T08:00:00.000Z", "a0", "account_id",
               "a0", 6, 5, "v1", HitEdge("VELOCITY", EdgeEnd("account_id", "a0"), EdgeEnd("merchant_id", "m1")),
               {"count": 6})


def operate(store: GraphStore) -> None:
    store.write_entities(events())
    store.write_hits([hit()])
    store.hits_for_accounts(["a0", "a1"], "2027-01-01T00:00:00.000Z")
    store.identifiers_of(["a0"], ["email", "phone"])
    store.commit()


def test_neptune_sends_exactly_the_traversals_gremlite_runs(tmp_path: Path) -> None:
    local = GremliteConnection(tmp_path / "g.sqlite")
    local_recorder = Recorder(local.remote)
    local.g = traversal().with_remote(local_recorder)
    operate(GremlinGraphStore(local))

    wire = Recorder()
    neptune = NeptuneConnection(NEPTUNE, credentials=lambda: CREDENTIALS, driver=lambda url, source, headers: wire)
    operate(GremlinGraphStore(neptune))

    assert wire.sent == local_recorder.sent
    # link use counts (DESIGN.md, Link strength): which events were counted and the links' counts are
    # read first; then 7 vertices and 7 relationships in chains of 5, the counted events, one hit
    # edge, the hits and identifiers queries
    assert len(wire.sent) == 2 + 2 + 2 + 1 + 1 + 1 + 1
    assert wire.sent[0].startswith("g.V().has('CountedEvent','key',within(['e0','e1','e2']))")
    assert wire.sent[2].startswith("g.V().has('Account','key','a0').fold().coalesce(__.unfold(),__.addV('Account')")
    assert wire.sent[6].startswith("g.addV('CountedEvent').property('key','e0')")
    assert "coalesce(__.outE('VELOCITY').has('hit_id','h1'),__.addE('VELOCITY').to('h0')" in wire.sent[7]


def test_iam_headers_match_an_independent_sigv4_for_a_fixed_clock() -> None:
    headers = sigv4_headers(NEPTUNE.url, "us-east-1", CREDENTIALS, now=NOW)
    host = "db.cluster-abc.us-east-1.neptune.amazonaws.com:8182"
    assert headers["Host"] == host
    assert headers["X-Amz-Date"] == "20261128T120000Z"
    assert headers["X-Amz-Security-Token"] == "SESSIONTOKEN"

    # SigV4 from the specification, step by step, with nothing from botocore.
    canonical = "\n".join(["GET", "/gremlin", "", f"host:{host}", "x-amz-date:20261128T120000Z",
                           "x-amz-security-token:SESSIONTOKEN", "", "host;x-amz-date;x-amz-security-token",
                           hashlib.sha256(b"").hexdigest()])
    scope = "20261128/us-east-1/neptune-db/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", "20261128T120000Z", scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + CREDENTIALS.secret_key).encode()
    for part in ("20261128", "us-east-1", "neptune-db", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert headers["Authorization"] == (
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, "
        f"SignedHeaders=host;x-amz-date;x-amz-security-token, Signature={signature}")


def test_each_connection_is_signed_afresh() -> None:
    opened: list[dict[str, str]] = []

    def driver(url: str, source: str, headers: dict[str, str]) -> Recorder:
        assert url == "wss://db.cluster-abc.us-east-1.neptune.amazonaws.com:8182/gremlin" and source == "g"
        opened.append(headers)
        return Recorder()

    NeptuneConnection(NEPTUNE, credentials=lambda: CREDENTIALS, driver=driver)
    assert len(opened) == 1 and opened[0]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    unsigned = NeptuneConnection(NeptuneSettings("h", iam_auth=False), driver=lambda url, source, headers: Recorder(
        results=[headers]))
    assert unsigned.run(unsigned.g.inject(1)) == [None]


class Flaky(RemoteConnection):  # type: ignore[misc]
    """A fake remote that fails its first `failures` submits with `error`, then answers [42]."""

    def __init__(self, failures: list[int], error: Exception) -> None:
        super().__init__("flaky", "g")
        self.failures, self.error = failures, error
        self.closed = False

    def submit(self, bytecode: Any) -> RemoteTraversal:
        if self.failures[0] > 0:
            self.failures[0] -= 1
            raise self.error
        return RemoteTraversal(iter([Traverser(42)]))

    def close(self) -> None:
        self.closed = True


CME = GremlinServerError({"code": 500, "message": "{\"code\":\"ConcurrentModificationException\"}", "attributes": {}})


DROPPED = ConnectionResetError("Connection reset by peer")


@pytest.mark.parametrize(("error", "reconnects"), [(CME, False), (DROPPED, True)])
@pytest.mark.parametrize("failures", [0, 1, 4])
def test_retry_and_reconnect_until_it_works(error: Exception, reconnects: bool, failures: int) -> None:
    remaining = [failures]
    created: list[Flaky] = []
    sleeps: list[float] = []

    def connect() -> Flaky:
        created.append(Flaky(remaining, error))
        return created[-1]

    policy = RetryPolicy(attempts=5, base_delay_s=0.1, max_delay_s=1.0)
    remote = RetryingRemote(connect, policy, sleep=sleeps.append, rng=random.Random(1))
    result = remote.submit(None)
    assert [t.object for t in result.traversers] == [42]
    assert len(sleeps) == failures
    assert all(0 <= s <= min(1.0, 0.1 * 2**i) for i, s in enumerate(sleeps))  # full jitter, capped
    assert len(created) == 1 + (failures if reconnects else 0)
    assert all(c.closed for c in created[:-1])
    assert (remote.reconnects, remote.retries) == ((failures, 0) if reconnects else (0, failures))


def test_gives_up_after_the_last_attempt_as_a_transient_error() -> None:
    sleeps: list[float] = []
    neptune = NeptuneConnection(NEPTUNE, credentials=lambda: CREDENTIALS,
                                driver=lambda url, source, headers: Flaky([99], CME),
                                policy=RetryPolicy(attempts=3), sleep=sleeps.append)
    with pytest.raises(TransientStoreError, match="ConcurrentModificationException"):
        neptune.run(neptune.g.V().count())
    assert len(sleeps) == 2


def test_other_errors_are_not_retried() -> None:
    sleeps: list[float] = []
    bad = GremlinServerError({"code": 597, "message": "MalformedQueryException", "attributes": {}})
    neptune = NeptuneConnection(NEPTUNE, credentials=lambda: CREDENTIALS,
                                driver=lambda url, source, headers: Flaky([1], bad), sleep=sleeps.append)
    with pytest.raises(StoreError, match="MalformedQueryException") as caught:
        neptune.run(neptune.g.V().count())
    assert not isinstance(caught.value, TransientStoreError)
    assert sleeps == []
