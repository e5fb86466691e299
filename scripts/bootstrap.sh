#!/usr/bin/env bash
# Set up this checkout on a fresh machine: Java, Maven and Chromium (from Debian, when
# missing; Chromium renders the HTML report in its screenshot test), Prometheus's
# promtool (from Debian's package, unpacked into ~/.cache/vizita/prometheus, not
# installed: the package would start a Prometheus server; the tests check the PromQL of
# the dashboards and alert rules with it), a virtualenv in .venv with the pinned
# packages, and the Kafka broker's jars (Maven Central, cached in ~/.cache/vizita/kafka).
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: please install ${missing[*]} (needs root)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

promtool_dir="$HOME/.cache/vizita/prometheus"
if [ ! -x "$promtool_dir/usr/bin/promtool" ]; then
  download=$(mktemp -d)
  # apt-get download needs the package lists; a fresh machine may have none yet.
  (cd "$download" && apt-get download -qq prometheus 2>/dev/null) || {
    [ "$(id -u)" -eq 0 ] || { echo "bootstrap: run as root once to fetch promtool" >&2; exit 1; }
    apt-get update -qq
    (cd "$download" && apt-get download -qq prometheus 2>/dev/null)
  }
  mkdir -p "$promtool_dir"
  dpkg-deb -x "$download"/prometheus_*.deb "$download/unpacked"
  install -D -m 0755 "$download/unpacked/usr/bin/promtool" "$promtool_dir/usr/bin/promtool"
  rm -rf "$download"
fi

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "bootstrap: Python 3.11+ is needed ($python is older)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
.venv/bin/python -c 'from vizita.app.broker import ensure_jars; from vizita.contract.settings import Settings; print("kafka jars:", ensure_jars(Settings().kafka_cache_dir))'
