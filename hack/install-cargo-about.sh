#!/usr/bin/env bash
# Installs cargo-about, which writes the third-party license listing that
# goes into the image (hack/image.sh), cached in
# $HAWSER_CACHE/cargo-about-<version>/bin, and prints its path. Built from
# crates.io with its own locked dependencies (a few minutes, once).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/hack/testenv/common.sh"

CARGO_ABOUT_VERSION=0.9.3
root="$HAWSER_CACHE/cargo-about-$CARGO_ABOUT_VERSION"
bin="$root/bin/cargo-about"

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qF "$CARGO_ABOUT_VERSION"; then
  echo "$bin"
  exit 0
fi
log "building cargo-about $CARGO_ABOUT_VERSION (once; cached in $root)"
# Its own target directory: never the project's, whose release profile differs.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CARGO_TARGET_DIR="$work" cargo install --quiet --locked --features cli cargo-about \
  --version "$CARGO_ABOUT_VERSION" --root "$root" >&2
"$bin" --version >&2
echo "$bin"
