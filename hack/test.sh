#!/usr/bin/env bash
# The project's test command (the README's, and what .ci/run calls): builds
# or reuses the test bed binaries, starts a private test bed, runs every
# test (unit, fixture and end-to-end), and stops the test bed on exit.
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
# promtool, for the alert-rule and /metrics checks in tests/e2e_monitoring.rs.
bash hack/install-promtool.sh >/dev/null
bash hack/testenv/up.sh
log "test bed ready after $((SECONDS - start))s"
# shellcheck disable=SC1091
. "$HAWSER_TESTENV_DIR/env"
cargo test --locked "$@"
log "tests finished after $((SECONDS - start))s"
