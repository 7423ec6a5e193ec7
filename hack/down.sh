#!/usr/bin/env bash
# Stops the quickstart: hawser and the test bed (by their recorded PIDs).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export HAWSER_TESTENV_DIR=${HAWSER_TESTENV_DIR:-$repo/.testenv}
bash "$repo/hack/testenv/down.sh"
