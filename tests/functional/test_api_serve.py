"""`python -m chalicelib serve`: the real local server on loopback, under concurrent requests
(a browser fires several at once), answers each request with its own parameters."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fraudtools.cli import main as cli_main
from tests.conftest import PROJECT, SEED_SAMPLE
from tests.serving import serving


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("serve")
    assert cli_main(["replay", "--rules", str(PROJECT / "rules.yaml"), "--events", str(SEED_SAMPLE),
                     "--data-dir", str(data_dir), "--out", str(data_dir / "hits.jsonl")]) == 0
    with serving(data_dir) as url:
        yield url


def fetch(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_concurrent_requests_keep_their_own_parameters(server: str) -> None:
    urls = [f"{server}/api/hits?limit={n % 7 + 1}" if n % 2 else f"{server}/api/accounts/1234-5678-20/aggregates"
            for n in range(60)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(fetch, urls))
    for url, (status, body) in zip(urls, answers, strict=True):
        assert status == 200, (url, body)
        assert isinstance(body, dict)
        if "limit=" in url:
            assert len(body["items"]) == int(url.rsplit("=", 1)[1])
        else:
            assert body["account"] == "1234-5678-20"


def test_serve_binds_loopback_and_refuses_a_data_dir_that_is_a_file(server: str, tmp_path: Path) -> None:
    assert server.startswith("http://127.0.0.1:")
    (tmp_path / "a-file").write_text("")
    result = subprocess.run([sys.executable, "-m", "chalicelib", "serve", "--data-dir", str(tmp_path / "a-file")],
                            cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "is not a directory" in result.stderr


def test_a_port_in_use_is_a_clear_error(server: str, tmp_path: Path) -> None:
    port = server.rsplit(":", 1)[1]
    result = subprocess.run([sys.executable, "-m", "chalicelib", "serve", "--data-dir", str(tmp_path), "--port", port],
                            cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
