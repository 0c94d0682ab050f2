#!/bin/sh
# Installs what the tests need beyond Python, from Debian's archive (idempotent: installs only what
# is missing): influxdb (influxd 1.6) for the InfluxDB time-series backend's tests, and chromium +
# chromium-driver for the investigator's view browser test (no browser download: Selenium drives
# /usr/bin/chromium through /usr/bin/chromedriver). Needs root (CI runs as root) and apt; the tests
# that need these fail loudly when they are missing.
set -eu
MISSING=""
command -v influxd >/dev/null 2>&1 || MISSING="$MISSING influxdb"
command -v chromium >/dev/null 2>&1 || MISSING="$MISSING chromium"
command -v chromedriver >/dev/null 2>&1 || MISSING="$MISSING chromium-driver"
if [ -z "$MISSING" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-services: missing$MISSING and apt-get is not available; install them by hand" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO apt-get install -y -qq --no-install-recommends $MISSING >/dev/null
# The influxdb package enables a system service; the tests start their own influxd in a temporary directory.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet influxdb 2>/dev/null; then
    $SUDO systemctl disable --now influxdb >/dev/null 2>&1 || true
fi
command -v influxd >/dev/null
command -v chromium >/dev/null
command -v chromedriver >/dev/null
