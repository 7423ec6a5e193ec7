#!/usr/bin/env bash
# Installs promtool (Debian's `prometheus` package) for the tests that check
# hawser's alert rules and /metrics. Idempotent; prints promtool's path.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/hack/testenv/common.sh"

if ! command -v promtool >/dev/null; then
  # The package's postinst would start a Prometheus server where an init
  # system runs; promtool is all the tests need, so forbid service starts.
  policy=/usr/sbin/policy-rc.d
  created_policy=false
  if [ ! -e "$policy" ] && [ -w /usr/sbin ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=true
  fi
  apt_install prometheus
  if $created_policy; then rm -f "$policy"; fi
fi
command -v promtool
