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
cleanup() {
  bash hack/testenv/down.sh
  rm -rf "$HAWSER_TESTENV_DIR"
}
trap cleanup EXIT

start=$SECONDS
# The container image, for the tests that run it (tests/e2e_install.rs):
# built as users build it, from the release profile.
HAWSER_IMAGE_ARCHIVE="$HAWSER_TESTENV_DIR/hawser.oci.tar"
export HAWSER_IMAGE_ARCHIVE
bash hack/image.sh --output "$HAWSER_IMAGE_ARCHIVE"
log "image built after $((SECONDS - start))s"
# promtool, for the alert-rule and /metrics checks in tests/e2e_monitoring.rs.
bash hack/install-promtool.sh >/dev/null
bash hack/testenv/up.sh
log "test bed ready after $((SECONDS - start))s"
# shellcheck disable=SC1091
. "$HAWSER_TESTENV_DIR/env"
cargo test --locked "$@"
log "tests finished after $((SECONDS - start))s"
