"""`serve` against hostile and careless clients: account ids that need URL encoding open the
account (the real server on a socket, and the Chalice test client standing in for API Gateway),
a slow or stalled client does not freeze the API for the others, and bad options are one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.settings import Settings
from chalicelib.wiring import build_investigator
from fraudtools.cli import main as cli_main
from fraudtools.cli.serve import make_server
from tests.conftest import PROJECT
from tests.serving import serving

#: ids the page sends through encodeURIComponent; `quote(safe="")` encodes them the same way
ODD_ACCOUNTS = ["ünï 1", "a/b", "x?y#z", "100%25 real", "plus+sign"]
CLIENT_TIMEOUT = 5.0  # generous: the check is that an answer comes at all while a slow client is held


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("serve-odd")
    events = directory / "events.jsonl"
    events.write_text("".join(
        json.dumps({"event_id": f"{n}-{i}", "ts": f"2026-11-28T16:4{i}:00Z", "account_id": account,
                    "amount": 10 + i, "email": f"{n}@example.com", "device_id": f"dev-{n}"}) + "\n"
        for n, account in enumerate(ODD_ACCOUNTS) for i in range(3)), encoding="utf-8")
    assert cli_main(["replay", "--rules", str(PROJECT / "rules.yaml"), "--events", str(events),
                     "--data-dir", str(directory), "--out", str(directory / "hits.jsonl")]) == 0
    return directory


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[str]:
    with serving(data_dir) as url:
        yield url


def fetch(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=CLIENT_TIMEOUT) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def account_urls(account: str) -> dict[str, str]:
    base = f"/api/accounts/{quote(account, safe='')}"
    return {"activity": base + "/activity", "aggregates": base + "/aggregates",
            "neighbourhood": base + "/neighbourhood?hops=1", "hits": base + "/hits"}


def check_opens_the_account(account: str, answers: dict[str, tuple[int, object]]) -> None:
    for route, (status, body) in answers.items():
        assert status == 200, (account, route, body)
        assert isinstance(body, dict)
        if route != "hits":
            assert body["account"] == account, (route, body)
    activity = answers["activity"][1]
    assert isinstance(activity, dict)
    assert [item["account_id"] for item in activity["items"]] == [account] * 3


@pytest.mark.parametrize("account", ODD_ACCOUNTS)
def test_an_encoded_account_id_opens_the_account_on_the_local_server(server: str, account: str) -> None:
    check_opens_the_account(account, {route: fetch(server + url) for route, url in account_urls(account).items()})


@pytest.mark.parametrize("account", ODD_ACCOUNTS)
def test_an_encoded_account_id_opens_the_account_through_the_chalice_gateway(data_dir: Path, account: str) -> None:
    investigator = build_investigator(Settings(data_dir=data_dir))
    app_module.use_investigator(investigator)
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")
    try:
        with Client(app_module.app) as client:
            answers = {}
            for route, url in account_urls(account).items():
                response = client.http.get(url)
                answers[route] = (response.status_code, json.loads(response.body))
    finally:
        app_module.use_investigator(None)
        investigator.close()
    check_opens_the_account(account, answers)


def test_a_path_value_that_is_not_utf8_is_a_400(server: str) -> None:
    status, body = fetch(server + "/api/accounts/%FF%FE/activity")
    assert status == 400 and "account:" in body["error"]  # type: ignore[index]


def slow_socket(server: str, receive_buffer: int | None = None) -> socket.socket:
    host, port = server.removeprefix("http://").split(":")
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # before connecting, so the window the server sees is small
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    slow.settimeout(CLIENT_TIMEOUT)
    slow.connect((host, int(port)))
    return slow


def test_a_client_sending_less_body_than_it_declared_does_not_hold_the_others(server: str) -> None:
    with slow_socket(server) as slow:
        slow.sendall(b"GET /api/hits HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly this much")
        for _ in range(3):
            status, body = fetch(server + "/api/health")
            assert status == 200 and body["status"] == "ok"  # type: ignore[index]


def test_a_client_that_pipelines_and_never_reads_does_not_hold_the_others(server: str) -> None:
    with slow_socket(server, receive_buffer=4096) as slow:
        request = b"GET /static/app.js HTTP/1.1\r\nHost: x\r\n\r\n"  # 13 kB an answer
        sent = threading.Event()

        def pipeline() -> None:  # the socket fills up, so sending too may block: on its own thread
            try:
                for _ in range(2000):
                    slow.sendall(request)
            except OSError:
                pass  # the server gave up on this client: what it should do
            sent.set()

        threading.Thread(target=pipeline, daemon=True).start()
        sent.wait(timeout=2)
        for _ in range(10):  # spread over a few seconds: the answers soon fill every buffer to this socket
            time.sleep(0.3)
            status, body = fetch(server + "/api/health")
            assert status == 200 and body["status"] == "ok"  # type: ignore[index]


@pytest.mark.parametrize(("length", "status"), [("abc", b"400"), ("-5", b"400"), ("99999999999", b"413")])
def test_a_bad_or_oversized_content_length_is_refused(server: str, length: str, status: bytes) -> None:
    with slow_socket(server) as client:
        client.sendall(f"GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
        answer = b""
        while chunk := client.recv(4096):  # the server answers and closes
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:100]
    assert fetch(server + "/api/health")[0] == 200


def test_the_server_drops_a_client_that_stalls_past_the_socket_timeout() -> None:
    server = make_server(app_module.app, 0, socket_timeout=0.5)
    host, port = server.server.server_address[:2]
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection((host, port), timeout=CLIENT_TIMEOUT) as slow:
            slow.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nabc")
            assert slow.recv(1024) == b""  # closed by the server; without a timeout recv times out here
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.mark.parametrize(("option", "expected"), [
    (["--port", "-1"], "error: --port -1 is not a TCP port"),
    (["--port", "70000"], "error: --port 70000 is not a TCP port"),
    (["--rules", "MISSING.yaml"], "error: MISSING.yaml is not a valid rules file: MISSING.yaml: cannot read"),
    (["--rules", "requirements.txt"], "error: requirements.txt is not a valid rules file"),
    (["--rules", "tests/fixtures/hostile-rules/control-nul-byte.yaml"], "control character #x00"),
])
def test_a_bad_option_is_one_line_and_a_non_zero_exit(data_dir: Path, option: list[str], expected: str) -> None:
    done = subprocess.run([sys.executable, "-m", "chalicelib", "serve", "--data-dir", str(data_dir), "--port", "0",
                           *option], cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and expected in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stdout == ""
