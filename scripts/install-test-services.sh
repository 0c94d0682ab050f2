#!/bin/sh
# Installs what the tests need beyond Python: Debian's influxdb (influxd 1.6) for the InfluxDB
# time-series backend's tests. Idempotent: does nothing when influxd is already on PATH.
# Needs root (CI runs as root) and apt; tests that need influxd fail loudly when it is missing.
set -eu
if command -v influxd >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-services: influxd is missing and apt-get is not available; install InfluxDB 1.x" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends influxdb >/dev/null
# The package enables a system service; the tests start their own influxd in a temporary directory.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet influxdb 2>/dev/null; then
    $SUDO systemctl disable --now influxdb >/dev/null 2>&1 || true
fi
command -v influxd >/dev/null
