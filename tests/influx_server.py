"""A real `influxd` (Debian's influxdb 1.6) on loopback for the tests: config, data and log in a
temporary directory, a free port, started here and stopped afterwards."""

from __future__ import annotations

import shutil
import socket
import ssl
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
  auth-enabled = {auth}
  https-enabled = {https}
  https-certificate = "{cert}"
  https-private-key = "{key}"
"""


class InfluxServerMissing(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "influxd test")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@contextmanager
def running_influxd(root: Path, *, timeout_s: float = 30.0, auth: bool = False,
                    tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """Start influxd under `root` (with `auth`, and HTTPS with `tls` = (certificate, key));
    yield its URL; stop it. Raises InfluxServerMissing when the binary is not installed,
    RuntimeError (with the server's log) when it does not come up."""
    binary = shutil.which("influxd")
    if binary is None:
        raise InfluxServerMissing(f"influxd is not installed: {INSTALL_HINT}")
    port, rpc_port = free_port(), free_port()
    config = root / "influxdb.conf"
    cert, key = tls or ("", "")
    config.write_text(CONFIG.format(root=root, port=port, rpc_port=rpc_port, auth=str(auth).lower(),
                                    https=str(tls is not None).lower(), cert=cert, key=key))
    log_path = root / "influxd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, "run", "-config", str(config)], stdout=log, stderr=subprocess.STDOUT)
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        context = ssl.create_default_context(cafile=str(tls[0])) if tls else None
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"influxd exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(url + "/ping", timeout=1, context=context) as response:
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
