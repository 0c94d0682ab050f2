"""InfluxTimeSeriesStore beyond the shared contract: against a real influxd (tests/influx_server.py)
where the behaviour is the server's, and with a fake HTTP client where a server cannot be made to
misbehave on cue (throttling, outages)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import urllib3

from chalicelib.events import Transaction
from chalicelib.settings import Settings, SettingsError
from chalicelib.stores import StoreError, TransientStoreError
from chalicelib.stores.influx import (
    InfluxConnection,
    InfluxTimeSeriesStore,
    field_string,
    tag_value,
)
from chalicelib.wiring import build_timeseries_store, influx_connection
from tests.influx_server import InfluxServerMissing, running_influxd, self_signed_certificate


def tx(event_id: str, ts_ms: int, **fields: object) -> Transaction:
    fields.setdefault("account_id", "a")
    fields.setdefault("amount", "10.50")
    return Transaction(event_id=event_id, ts=ts_ms, **fields)


def sibling(store: InfluxTimeSeriesStore, **kwargs: Any) -> InfluxTimeSeriesStore:
    """Another writer (another container) on the same database."""
    return InfluxTimeSeriesStore(store.connection, **kwargs)


# --------------------------------------------------------------------------- layout and semantics


def test_two_events_of_one_key_in_the_same_millisecond_stay_two(influx_store: InfluxTimeSeriesStore) -> None:
    written = influx_store.write([tx("e1", 5_000, ip="9"), tx("e2", 5_000, ip="9")])
    again = sibling(influx_store).write([tx("e3", 5_000, ip="9")])
    top = again.pending[0].seq
    assert [s.event.event_id for s in influx_store.history("ip", ["9"], 0, 10_000, top)] == ["e1", "e2", "e3"]
    assert len({p.seq for p in written.pending} | {top}) == 3


def test_an_event_id_is_stored_once_whatever_the_content_of_later_deliveries(
        influx_store: InfluxTimeSeriesStore) -> None:
    first = influx_store.write([tx("e1", 1_000, account_id="a", ip="1")])
    again = sibling(influx_store).write([tx("e1", 9_000, account_id="b", ip="2", amount=99)])
    assert again.new_ids == frozenset() and [p.event for p in again.pending] == [p.event for p in first.pending]
    top = again.pending[0].seq
    assert influx_store.history("account_id", ["b"], 0, 10_000, top) == []
    assert influx_store.history("ip", ["2"], 0, 10_000, top) == []
    assert len(influx_store.dump()) == 1


def test_delta_reads_return_exactly_what_arrived_after_min_seq(influx_store: InfluxTimeSeriesStore) -> None:
    first = influx_store.write([tx("e1", 1_000, ip="1"), tx("e2", 2_000, ip="1")])
    second = influx_store.write([tx("e3", 1_500, ip="1"), tx("e4", 3_000, ip="2")])
    mark = max(p.seq for p in first.pending)
    top = max(p.seq for p in second.pending)
    assert [s.event.event_id for s in influx_store.history("ip", ["1", "2"], 0, 10_000, top, min_seq=mark)] \
        == ["e3", "e4"]
    assert [s.event.event_id for s in influx_store.history("ip", ["1"], 0, 10_000, top)] == ["e1", "e2", "e3"]
    assert influx_store.history("ip", ["1"], 0, 10_000, mark, min_seq=mark) == []
    assert InfluxTimeSeriesStore.exact_arrival is False  # seqs come from writers' clocks: read with a margin


NASTY = ["a b", "a,b=c", 'q"uote', "back\\slash\\", "new\nline", "tab\tx", "ümlaut €", "%41", "$k0", "x' OR 1=1 --",
         "a\\ b"]


@pytest.mark.parametrize("value", NASTY)
def test_any_text_survives_line_protocol_and_queries(influx_store: InfluxTimeSeriesStore, value: str) -> None:
    event = tx("e-" + value, 1_000, account_id=value, ip=value, device_id="d", currency=value,
               attributes={"k": value})
    other = tx("other", 1_000, account_id="plain", ip="plain", currency="EUR", attributes={"k": "plain"})
    top = max(p.seq for p in influx_store.write([event, other]).pending)
    for key_field in ("account_id", "ip", "currency", "attributes.k"):
        got = influx_store.history(key_field, [value], 0, 10_000, top)
        assert [s.event for s in got] == [event], key_field


def test_encodings_are_injective_and_plain() -> None:
    values = ["a b", "a%20b", "a+b", "a/b", "a\\", "a\n"]
    assert len({tag_value(v) for v in values}) == len(values)
    assert all(c not in tag_value(v) for v in values for c in " ,=\\\n\"")
    assert field_string('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'


def test_unindexed_key_fields_are_read_from_the_record_of_truth(influx_store: InfluxTimeSeriesStore) -> None:
    top = max(p.seq for p in influx_store.write([tx("e1", 1_000, currency="EUR"), tx("e2", 2_000, currency="USD"),
                                                 tx("e3", 3_000, currency="EUR")]).pending)
    assert [s.event.event_id for s in influx_store.history("currency", ["EUR"], 1_000, 3_000, top)] == ["e3"]


def test_judged_is_recorded_on_the_record_of_truth_and_seen_by_other_writers(
        influx_store: InfluxTimeSeriesStore) -> None:
    influx_store.write([tx("e1", 1_000), tx("e2", 2_000)])
    other = sibling(influx_store)
    other.mark_judged(["e1"])  # not written by `other`: found by query
    pending = other.write([tx("e1", 1_000), tx("e2", 2_000)]).pending
    assert [p.event.event_id for p in pending] == ["e2"]
    assert [row[1] for row in influx_store.dump()] == [1, 0]


def test_a_batch_that_died_half_way_is_completed_by_its_redelivery(influx_store: InfluxTimeSeriesStore) -> None:
    """The record-of-truth points went in, the index points did not: the redelivery keeps the
    seq and writes the missing index points."""
    dying = sibling(influx_store, http=FailingOn("tx_by_ip", influx_store.http), max_attempts=1)
    event = tx("e1", 1_000, ip="7")
    with pytest.raises(TransientStoreError):
        dying.write([event])
    stored_seq = influx_store.dump()[0][0]
    assert influx_store.history("ip", ["7"], 0, 10_000, stored_seq) == []
    redelivered = influx_store.write([event])
    assert redelivered.new_ids == frozenset() and [p.seq for p in redelivered.pending] == [stored_seq]
    assert [s.seq for s in influx_store.history("ip", ["7"], 0, 10_000, stored_seq)] == [stored_seq]


def test_refused_points_are_dead_lettered_with_the_servers_reason_and_the_rest_goes_on(
        influx_store: InfluxTimeSeriesStore) -> None:
    # Someone wrote `amount` as a number into tx_by_ip (in the current shard): the server refuses
    # our (text) amount there.
    assert influx_store._send_lines([f"tx_by_ip,key=x amount=1.5 {time.time_ns()}"]) is None
    events = [tx(f"e{i}", 1_000 + i, account_id=f"a{i}") for i in range(6)]
    events[2] = tx("e2", 1_002, account_id="a2", ip="1.2.3.4")
    events[4] = tx("e4", 1_004, account_id="a4", ip="5.6.7.8")
    written = influx_store.write(events)
    assert set(written.rejected) == {"e2", "e4"}
    assert "field type conflict" in written.rejected["e2"]
    assert [p.event.event_id for p in written.pending] == ["e0", "e1", "e3", "e5"]
    assert written.new_ids == {"e0", "e1", "e3", "e5"}
    top = max(p.seq for p in written.pending) + 10**9
    # what was stored of e2 and e4 (their record-of-truth points) is flagged and read by nobody
    assert [s.event.event_id for s in influx_store.history("account_id", ["a2", "a4", "a5"], 0, 10**6, top)] == ["e5"]
    assert {row[2]: row[-1] is not None for row in influx_store.dump()} == {
        "e0": False, "e1": False, "e2": True, "e3": False, "e4": True, "e5": False}


def test_concurrent_writers_never_share_a_slot(influx_store: InfluxTimeSeriesStore) -> None:
    first = sibling(influx_store, rng=random.Random(1))
    second = sibling(influx_store, rng=random.Random(1))  # draws the same slot first
    a = first.write([tx("e1", 1_000)])
    b = second.write([tx("e2", 1_000)])
    assert first.slot is not None and second.slot is not None and first.slot != second.slot
    assert a.pending[0].seq % 1000 == first.slot and b.pending[0].seq % 1000 == second.slot
    held = first.slot
    first._slot_checked = 0.0  # its check is old: it renews, sees the other claim, and keeps its slot
    c = first.write([tx("e3", 1_000)])
    assert first.slot == held and c.pending[0].seq % 1000 == held


def test_a_missing_database_is_a_clear_error(influx_url: str) -> None:
    store = InfluxTimeSeriesStore(InfluxConnection(influx_url, "no_such_db"))
    with pytest.raises(StoreError, match="no_such_db"):
        store.write([tx("e1", 1_000)])


def test_unknown_key_fields_are_refused_before_any_query(influx_store: InfluxTimeSeriesStore) -> None:
    with pytest.raises(StoreError, match="cannot key history"):
        influx_store.prepare(["attributes.x y"])


# --------------------------------------------------------------------------- HTTP behaviour (fakes)


@dataclass
class Response:
    status: int
    data: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class FailingOn:
    """Passes requests to `inner` except writes whose body mentions `needle` (a connection error)."""

    def __init__(self, needle: str, inner: Any) -> None:
        self.needle, self.inner = needle.encode(), inner

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        if "/write" in url and self.needle in (kwargs.get("body") or b""):
            raise urllib3.exceptions.ProtocolError("connection reset")
        return self.inner.request(method, url, **kwargs)


class Scripted:
    """Answers from a script of responses (or exceptions), recording each request."""

    def __init__(self, *answers: Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Response:
        self.requests.append((method, url, kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


EMPTY = Response(200, json.dumps({"results": [{"statement_id": 0}]}).encode())


def scripted_store(http: Scripted, sleeps: list[float], **kwargs: Any) -> InfluxTimeSeriesStore:
    store = InfluxTimeSeriesStore(InfluxConnection("https://influx.example:8086", "fraud", token="tkn", **kwargs),
                                  http=http, sleep=sleeps.append, rng=random.Random(7), max_attempts=4)
    store.slot, store._slot_checked = 5, store.clock()  # skip the lease dance
    return store


def test_throttling_and_outages_are_retried_with_jittered_backoff() -> None:
    sleeps: list[float] = []
    http = Scripted(Response(429, b'{"error":"slow down"}', {"Retry-After": "0.3"}),
                    urllib3.exceptions.NewConnectionError(None, "refused"),  # type: ignore[arg-type]
                    Response(503, b'{"error":"busy"}'), EMPTY)
    store = scripted_store(http, sleeps)
    assert store.history("ip", ["1"], 0, 1, 10**12) == []
    assert len(sleeps) == 3 and sleeps[0] >= 0.3 and all(0 <= s <= 5.0 for s in sleeps)
    assert http.requests[-1][2]["headers"]["Authorization"] == "Token tkn"


def test_a_store_that_stays_busy_is_a_transient_error() -> None:
    sleeps: list[float] = []
    store = scripted_store(Scripted(*[Response(503, b'{"error":"busy"}')] * 4), sleeps)
    with pytest.raises(TransientStoreError, match="after 4 attempts: HTTP 503: busy"):
        store.history("ip", ["1"], 0, 1, 10**12)
    assert len(sleeps) == 3


def test_refused_credentials_are_not_retried() -> None:
    store = scripted_store(Scripted(Response(401, b'{"error":"authorization failed"}')), [])
    with pytest.raises(StoreError, match="refused the credentials") as info:
        store.history("ip", ["1"], 0, 1, 10**12)
    assert not isinstance(info.value, TransientStoreError)


def test_user_and_password_go_as_basic_auth_and_never_into_repr() -> None:
    connection = InfluxConnection("https://h:8086", "fraud", username="svc", password="s3cret")
    assert connection.auth_headers() == {"Authorization": "Basic c3ZjOnMzY3JldA=="}
    assert "s3cret" not in repr(connection) and "s3cret" not in repr(Settings())


def test_writes_go_in_chunks_the_server_accepts() -> None:
    sleeps: list[float] = []
    http = Scripted(EMPTY, *[Response(204)] * 10)
    store = scripted_store(http, sleeps)
    events = [tx(f"e{i}", i, account_id=f"a{i}", ip="1", device_id="d", card_id="c", email="m", phone="p",
                 merchant_id="x") for i in range(900)]
    written = store.write(events)
    assert len(written.pending) == 900
    bodies = [r[2]["body"] for r in http.requests if "/write" in r[1]]
    assert len(bodies) == 3  # 900 record-of-truth points; 6300 index points in 5000-point chunks
    assert all(body.count(b"\n") <= 5000 for body in bodies)
    assert sum(body.count(b"\n") for body in bodies) == 900 * 8


# --------------------------------------------------------------------------- configuration


def test_settings_and_secret_build_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(Name="influx", SecretString=json.dumps({"token": "tkn-1"}))["ARN"]
        settings = Settings.from_env({"TIMESERIES_BACKEND": "influxdb", "INFLUXDB_URL": "https://h:8086",
                                      "INFLUXDB_DATABASE": "db", "INFLUXDB_RETENTION_POLICY": "rp",
                                      "INFLUXDB_SECRET_ARN": arn, "INFLUXDB_TIMEOUT_SECONDS": "3"})
        connection = influx_connection(settings)
        assert (connection.url, connection.database, connection.retention_policy, connection.token,
                connection.timeout_s) == ("https://h:8086", "db", "rp", "tkn-1", 3.0)
        assert isinstance(build_timeseries_store(settings), InfluxTimeSeriesStore)
        empty = client.create_secret(Name="empty", SecretString="{}")["ARN"]
        with pytest.raises(StoreError, match="holds no InfluxDB credentials"):
            influx_connection(Settings.from_env({"INFLUXDB_URL": "https://h", "INFLUXDB_SECRET_ARN": empty}))
        with pytest.raises(StoreError, match="cannot read the InfluxDB credentials") as info:
            influx_connection(Settings.from_env({"INFLUXDB_URL": "https://h", "INFLUXDB_SECRET_ARN": arn + "x"}))
        assert info.value.__cause__ is None


def test_influx_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="INFLUXDB_URL"):
        Settings.from_env({"INFLUXDB_URL": "h:8086"})
    with pytest.raises(StoreError, match="needs INFLUXDB_URL"):
        build_timeseries_store(Settings.from_env({"TIMESERIES_BACKEND": "influxdb"}))


def test_a_missing_server_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InfluxServerMissing, match=r"install-test-services\.sh"), running_influxd(tmp_path):
        pass


# --------------------------------------------------------------------------- TLS and credentials (a second server)


@pytest.fixture(scope="module")
def secure_influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """influxd over HTTPS (a self-signed certificate) with authentication and one admin user."""
    import ssl
    import urllib.parse
    import urllib.request

    root = tmp_path_factory.mktemp("influxd-secure")
    tls = self_signed_certificate(root)
    try:
        with running_influxd(root, auth=True, tls=tls) as url:
            body = urllib.parse.urlencode({"q": "CREATE USER \"admin\" WITH PASSWORD 'pw-1' WITH ALL PRIVILEGES"})
            context = ssl.create_default_context(cafile=str(tls[0]))
            with urllib.request.urlopen(url + "/query", body.encode(), timeout=10, context=context) as response:
                assert response.status == 200
            yield url, tls[0]
    except InfluxServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)


def test_user_and_password_over_tls_with_a_ca_bundle(secure_influx: tuple[str, Path]) -> None:
    url, ca = secure_influx
    store = InfluxTimeSeriesStore(InfluxConnection(url, "secure", username="admin", password="pw-1",
                                                   ca_bundle=str(ca)))
    store.create_database()
    top = max(p.seq for p in store.write([tx("e1", 1_000, ip="1")]).pending)
    assert [s.event.event_id for s in store.history("ip", ["1"], 0, 10_000, top)] == ["e1"]


def test_wrong_credentials_and_untrusted_certificates_are_clear_errors_not_retries(
        secure_influx: tuple[str, Path]) -> None:
    url, ca = secure_influx
    sleeps: list[float] = []
    wrong = InfluxTimeSeriesStore(InfluxConnection(url, "secure", username="admin", password="nope",
                                                   ca_bundle=str(ca)), sleep=sleeps.append)
    with pytest.raises(StoreError, match="refused the credentials") as refused:
        wrong.history("ip", ["1"], 0, 1, 10**12)
    untrusted = InfluxTimeSeriesStore(InfluxConnection(url, "secure", username="admin", password="pw-1"),
                                      sleep=sleeps.append)
    with pytest.raises(StoreError, match="TLS failed") as tls:
        untrusted.history("ip", ["1"], 0, 1, 10**12)
    assert not isinstance(refused.value, TransientStoreError) and not isinstance(tls.value, TransientStoreError)
    assert sleeps == []
