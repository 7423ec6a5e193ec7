#!/usr/bin/env bash
# Installs moto_server (pinned) into a venv in the cache. Idempotent: a
# completed install leaves a stamp file; a half-finished one is redone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

venv="$HAWSER_CACHE/moto-$MOTO_VERSION"
if [ -f "$venv/.installed" ]; then
  log "moto $MOTO_VERSION cached in $venv"
  exit 0
fi
python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
log "installing moto[server]==$MOTO_VERSION into $venv (about 75 s)"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
touch "$venv/.installed"
log "moto in $venv"
