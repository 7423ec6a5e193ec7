#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kubectl v1.20.2 from
# Debian's `kubernetes` source package, plus installs etcd, into a cache
# outside the clone. Idempotent: a second run with the binaries present
# returns at once.
#
# Why from source: this machine cannot download Kubernetes release binaries;
# Debian ships the v1.20.2 source and a Go toolchain that builds it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/testenv/common.sh
. "$here/common.sh"

bin="$HAWSER_CACHE/kube-v1.20.2/bin"
if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/kubectl" ]; then
  log "kubernetes v1.20.2 binaries cached in $bin"
  exit 0
fi

apt_install golang-go rsync etcd-server golang-github-modern-go-reflect2-dev dpkg-dev

src_list=/etc/apt/sources.list.d/hawser-deb-src.list
if ! grep -rqs '^deb-src .*bookworm main' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
  # The mirror the machine already uses, from a deb822 `URIs:` line or a
  # one-line `deb` entry; awk (not `head`) so pipefail sees no SIGPIPE.
  mirror=$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null || true) \
    | awk '/^URIs:/ && $2 !~ /security/ {print $2; exit} /^deb / && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  log "adding deb-src for bookworm from $mirror"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main" >"$src_list"
  apt-get update -qq
fi

work="$HAWSER_CACHE/kube-src"
rm -rf "$work"
mkdir -p "$work"
(
  cd "$work"
  apt-get source --download-only kubernetes >/dev/null
  orig=$(ls kubernetes_*.orig.tar.* | head -n1)
  log "unpacking $orig"
  tar xf "$orig"
)
tree=$(find "$work" -maxdepth 1 -mindepth 1 -type d | head -n1)
[ -f "$tree/Makefile" ] || die "no kubernetes tree found under $work"

# The vendored reflect2 1.0.1 makes the apiserver segfault under Go 1.19.
rm -rf "$tree/vendor/github.com/modern-go/reflect2"
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$tree/vendor/github.com/modern-go/reflect2"
rm -f "$tree/vendor/github.com/modern-go/reflect2/go.mod"

log "building kubernetes v1.20.2 (about 10-15 minutes on 2 cores)"
(
  cd "$tree"
  GOPATH="$tree/.go" GOCACHE="$HAWSER_CACHE/go-build" CGO_ENABLED=0 \
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kubectl"
)
mkdir -p "$bin.tmp"
for b in kube-apiserver kube-controller-manager kubectl; do
  cp "$tree/_output/local/bin/linux/amd64/$b" "$bin.tmp/$b" 2>/dev/null \
    || cp "$(find "$tree/_output" -type f -name "$b" | head -n1)" "$bin.tmp/$b"
done
rm -rf "$bin"
mv "$bin.tmp" "$bin"
rm -rf "$work"
log "kubernetes binaries in $bin"
