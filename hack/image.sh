#!/usr/bin/env bash
# Builds hawser's container image as an OCI image archive, from the
# project's release build, with no base image, no registry and no daemon
# (Debian's buildah, vfs storage). Usage:
#
#   bash hack/image.sh [--output FILE] [--binary FILE]
#
#   --output FILE   where the archive goes (default: hawser.oci.tar)
#   --binary FILE   this hawser binary instead of `cargo build --release`'s
#                   (to check that a published image is the one this tree
#                   and binary make: same digest)
#
# The image (hack/image/rootfs.sh lists its files): the release binary
# and the glibc libraries it links, Debian's CA bundle, /etc/passwd and
# /etc/group for user 65532, the license texts; runs as 65532:65532,
# entrypoint hawser, cmd run, ports 8443 and 8080, OCI labels. Built
# twice from the same binary it has the same digest: every timestamp is
# SOURCE_DATE_EPOCH (default: the commit's time). Prints the archive's
# path, size and manifest digest; the digest is what `image.digest` pins
# in the chart (docs/install.md).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
. hack/testenv/common.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HAWSER_CACHE/target}

out=hawser.oci.tar
bin=
while [ $# -gt 0 ]; do
  case $1 in
    --output) out=${2:?--output needs a file}; shift 2 ;;
    --binary) bin=${2:?--binary needs a file}; shift 2 ;;
    *) die "unknown argument $1 (usage: hack/image.sh [--output FILE] [--binary FILE])" ;;
  esac
done
case $out in /*) ;; *) out="$PWD/$out" ;; esac

# buildah's vfs storage and chroot runs, and apt-get, as on CI's machines.
[ "$(id -u)" = 0 ] || die "hack/image.sh runs as root (buildah with vfs storage and chroot isolation)"
apt_install buildah ca-certificates
# No daemon and no kernel overlay here: plain-copy storage, chroot runs.
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
about=$(bash hack/install-cargo-about.sh)

start=$SECONDS
if [ -z "$bin" ]; then
  log "cargo build --release (lto, one codegen unit: minutes when the code changed)"
  cargo build --release --locked --quiet --bin hawser
  bin="$CARGO_TARGET_DIR/release/hawser"
  log "release build done after $((SECONDS - start))s"
fi
[ -x "$bin" ] || die "$bin: not an executable"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
source_url=$(sed -n 's/^repository = "\(.*\)"$/\1/p' Cargo.toml | head -1)
license=$(sed -n 's/^license = "\(.*\)"$/\1/p' Cargo.toml | head -1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# A tree with uncommitted changes is not that commit.
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || revision="$revision-dirty"
case $(uname -m) in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) die "no OCI architecture name for $(uname -m)" ;;
esac
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

work=$(mktemp -d)
ctr=
cleanup() {
  [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The listing depends only on Cargo.lock and cargo-about's inputs: kept in
# the cache under their checksum (cargo-about takes a minute or two).
key=$(cat Cargo.toml Cargo.lock hack/image/about.toml hack/image/about.hbs "$about" | sha256sum | cut -c1-16)
licenses="$HAWSER_CACHE/licenses/$key.txt"
if [ ! -s "$licenses" ]; then
  log "cargo-about: listing the third-party licenses"
  # cargo-about reads `cargo metadata`, which wants every platform's crates
  # on disk (--offline keeps cargo-about itself off the network).
  cargo fetch --locked --quiet
  mkdir -p "$(dirname "$licenses")"
  tmp=$(mktemp "$licenses.XXXXXX")
  "$about" generate --locked --offline --fail -c hack/image/about.toml \
    -o "$tmp" hack/image/about.hbs 2>"$work/about.log" || {
    cat "$work/about.log" >&2
    rm -f "$tmp"
    die "cargo-about could not list the third-party licenses"
  }
  chmod 0644 "$tmp"
  mv "$tmp" "$licenses"
fi
cp "$licenses" "$work/THIRD-PARTY-LICENSES.txt"
bash hack/image/rootfs.sh "$bin" "$work/THIRD-PARTY-LICENSES.txt" "$work/rootfs"

ctr=$(buildah from --quiet scratch)
buildah copy --quiet "$ctr" "$work/rootfs" / >/dev/null
buildah config \
  --os linux --arch "$arch" \
  --user 65532:65532 \
  --workingdir / \
  --entrypoint '["/usr/local/bin/hawser"]' \
  --cmd run \
  --port 8443/tcp --port 8080/tcp \
  --label org.opencontainers.image.title=hawser \
  --label "org.opencontainers.image.source=$source_url" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.licenses=$license" \
  "$ctr"
# Written beside the rest and moved into place: a failed run leaves no
# partial archive.
buildah commit --quiet --format oci --timestamp "$epoch" --omit-history \
  --identity-label=false --disable-compression=false \
  "$ctr" "oci-archive:$work/image.tar" >/dev/null
mv "$work/image.tar" "$out"

digest=$(tar -xOf "$out" index.json | sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p')
[ -n "$digest" ] || die "no manifest digest in $out"
log "image built after $((SECONDS - start))s"
echo "archive: $out"
echo "size: $(stat -c %s "$out") bytes"
echo "digest: $digest"
