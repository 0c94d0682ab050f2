"""A real `influxd` (Debian's influxdb 1.6) on loopback for the tests: config, data and log in a
temporary directory, a free port, started here and stopped afterwards."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

INSTALL_HINT = "run scripts/install-test-services.sh as root (make test does) to install Debian's influxdb"

CONFIG = """\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  max-values-per-tag = 0
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  auth-enabled = false
"""


class InfluxServerMissing(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_influxd(root: Path, *, timeout_s: float = 30.0) -> Iterator[str]:
    """Start influxd under `root`; yield its URL; stop it. Raises InfluxServerMissing when the
    binary is not installed, RuntimeError (with the server's log) when it does not come up."""
    binary = shutil.which("influxd")
    if binary is None:
        raise InfluxServerMissing(f"influxd is not installed: {INSTALL_HINT}")
    port, rpc_port = free_port(), free_port()
    config = root / "influxdb.conf"
    config.write_text(CONFIG.format(root=root, port=port, rpc_port=rpc_port))
    log_path = root / "influxd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, "run", "-config", str(config)], stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"influxd exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(url + "/ping", timeout=1) as response:
                        if response.status == 204:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"influxd did not answer on {url} within {timeout_s}s:\n"
                                       f"{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
