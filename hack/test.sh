#!/usr/bin/env bash
# The project's test command (the README's, and what .ci/run calls): builds
# or reuses the test bed binaries, builds the container image
# (hack/image.sh), starts a private test bed, runs every test (unit,
# fixture, end-to-end and the image's), and stops the test bed on exit.
# Extra arguments go to `cargo test`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
. hack/testenv/common.sh
# One target directory outside the clone, reused across clones and CI runs:
# the AWS SDK and kube crates take minutes to build from clean.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HAWSER_CACHE/target}

# A private state directory, so a quickstart running in .testenv is untouched.
HAWSER_TESTENV_DIR=$(mktemp -d /tmp/hawser-testenv.XXXXXX)
export HAWSER_TESTENV_DIR
# The image's own directory: hack/testenv/up.sh empties the test bed's.
image_dir=$(mktemp -d /tmp/hawser-image.XXXXXX)
HAWSER_IMAGE_ARCHIVE="$image_dir/hawser.oci.tar"
export HAWSER_IMAGE_ARCHIVE
cleanup() {
  bash hack/testenv/down.sh
  remove_test_containers
  rm -rf "$HAWSER_TESTENV_DIR" "$image_dir"
}
# The containers the image tests made (tests/support/image.rs names them
# hawser-e2e-*; a killed test leaves its own), and the image they pulled
# into buildah's storage (its ID is the digest of the archive's config).
remove_test_containers() {
  command -v buildah >/dev/null || return 0
  local ctrs id
  ctrs=$(STORAGE_DRIVER=vfs buildah containers --quiet --filter name=hawser-e2e- 2>/dev/null) || true
  # shellcheck disable=SC2086
  [ -z "$ctrs" ] || STORAGE_DRIVER=vfs buildah rm $ctrs >/dev/null 2>&1 || true
  [ -f "${HAWSER_IMAGE_ARCHIVE:-}" ] || return 0
  id=$(python3 - "$HAWSER_IMAGE_ARCHIVE" <<'PY'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    read = lambda name: json.load(t.extractfile(name))
    manifest = read("blobs/sha256/" + read("index.json")["manifests"][0]["digest"][7:])
    print(manifest["config"]["digest"][7:])
PY
) || return 0
  STORAGE_DRIVER=vfs buildah rmi "$id" >/dev/null 2>&1 || true
}
trap cleanup EXIT

start=$SECONDS
# The container image, for the tests that run it (tests/e2e_image.rs):
# built as users build it, from the release profile.
bash hack/image.sh --output "$HAWSER_IMAGE_ARCHIVE"
# What those tests use besides: skopeo (the push path, docs/install.md)
# and ss (which process serves a port).
apt_install skopeo iproute2
log "image built after $((SECONDS - start))s"
# promtool, for the alert-rule and /metrics checks in tests/e2e_monitoring.rs.
bash hack/install-promtool.sh >/dev/null
bash hack/testenv/up.sh
log "test bed ready after $((SECONDS - start))s"
# shellcheck disable=SC1091
. "$HAWSER_TESTENV_DIR/env"
cargo test --locked "$@"
if [ $# -eq 0 ]; then
  # The tests that need the test bed to themselves (#[ignore]d above): the
  # outages restart the apiserver and moto every other test uses, and the
  # per-account budget test watches every namespace. One at a time, after
  # the rest.
  log "tests that need the test bed alone, after $((SECONDS - start))s"
  cargo test --locked --test e2e -- --ignored --test-threads=1
fi
log "tests finished after $((SECONDS - start))s"
