#!/usr/bin/env bash
# test-tools.sh: installs the programs some tests drive, when missing: Chromium (the
# /docs and /redoc browser test) and promtool (the Prometheus config and alert rules
# checks, from Debian's prometheus package). Idempotent; needs root on Debian 12.
# Outside CI those tests skip with a message when the programs are absent.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v promtool >/dev/null || need+=(prometheus)
[ ${#need[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { echo "test-tools: run as root to install ${need[*]}" >&2; exit 1; }
echo "test-tools: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps the package's Prometheus server from starting: only promtool is used.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y --no-install-recommends "${need[@]}" ||
  { apt-get update -qq && apt-get install -y --no-install-recommends "${need[@]}"; }
