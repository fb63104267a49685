#!/usr/bin/env sh
# Install Debian's `prometheus` package (the server and promtool, static Go binaries) into DIR, without root:
# `apt-get download` + `dpkg-deb -x`. `make prometheus` (and `make test`) run it; the tests start the server from
# DIR/usr/bin/prometheus (or HERA_FLOWS_PROMETHEUS, or a `prometheus` on PATH).
set -eu
dir="$1"
if [ -x "$dir/usr/bin/prometheus" ] && [ -x "$dir/usr/bin/promtool" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    (cd "$tmp" && apt-get download prometheus)
  else
    echo "cannot download the Debian package prometheus (apt-get download prometheus failed); run" \
         "'sudo apt-get update' once, or put a prometheus binary on PATH" >&2
    exit 1
  fi
fi
mkdir -p "$dir"
dpkg-deb -x "$tmp"/prometheus_*.deb "$dir"
"$dir/usr/bin/prometheus" --version | head -n 1
