#!/usr/bin/env bash
# Installs the Debian packages that confscale's tests run for real, when missing.
# Usage: install-debian-deps.sh [test|demo]
set -euo pipefail
want=${1:-test}

# binary -> package
declare -A pkg_of=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [amtool]=prometheus-alertmanager
  [prometheus-node-exporter]=prometheus-node-exporter
  [chromium]=chromium
  [chromedriver]=chromium-driver
  [docker-compose]=docker-compose
  [victoria-metrics]=victoria-metrics
  [openssl]=openssl
  [nginx]=nginx  # the generated cluster-proxy config is checked with nginx -t and served
)

missing=()
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
if [ "$want" = test ]; then
  for bin in "${!pkg_of[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("${pkg_of[$bin]}")
  done
fi
[ ${#missing[@]} -eq 0 ] && exit 0

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "error: need root to install ${missing[*]} (run as root, or install them yourself)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Debian's packages start their services on install where an init system runs;
# the tests start their own copies on free 127.0.0.1 ports, so that does no harm.
apt-get install -y -q --no-install-recommends "${missing[@]}"
