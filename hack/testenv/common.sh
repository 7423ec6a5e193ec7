# Shared helpers for the test-bed scripts. Sourced, not run.
# Every path and port can be overridden from the environment.

# Caches that must survive a fresh clone live outside it.
HAWSER_CACHE=${HAWSER_CACHE:-$HOME/.cache/hawser}
export HAWSER_CACHE

log() { printf '[testenv %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# apt_install PKG...: installs the packages that are missing, running
# `apt-get update` once when needed.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  }
}

MOTO_VERSION=5.2.5
KUBE_BIN="$HAWSER_CACHE/kube-v1.20.2/bin"
MOTO_VENV="$HAWSER_CACHE/moto-$MOTO_VERSION"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# wait_until SECONDS WHAT CMD...: polls CMD until it succeeds or the deadline passes.
wait_until() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not happen within ${secs}s"
    sleep 0.3
  done
}
