"""`serve` as a user runs it: a real process on 127.0.0.1 with a free port, stopped afterwards."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import PROJECT


@contextmanager
def serving(data_dir: Path, *args: str) -> Iterator[str]:
    """`python -m chalicelib serve --data-dir DIR --port 0 ARGS...` running: its base URL
    (http://127.0.0.1:PORT, no trailing slash). A server that does not start fails with its first
    line of output (the error it printed)."""
    process = subprocess.Popen([sys.executable, "-m", "chalicelib", "serve", "--data-dir", str(data_dir),
                                "--port", "0", *args], cwd=PROJECT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("investigator's view on http://127.0.0.1:"), f"serve did not start: {line}"
        yield "http://" + line.split("http://", 1)[1].split("/", 1)[0]
    finally:
        process.terminate()
        process.wait(timeout=10)
