#!/usr/bin/env bash
# The test command: brings the local services up (idempotent), then formatting, lints,
# the deployment files' checks, and every test of the workspace against the real
# PostgreSQL, Redis and broker.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

deploy/local/up.sh
# shellcheck source=/dev/null
source .local/env

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== deployment files (scripts/check-deploy.sh)"
scripts/check-deploy.sh
echo "== cargo test"
# --show-output prints what passing tests report (e.g. the global log's counts).
cargo test --workspace --locked -- --show-output
echo "== benchmark smoke run (scripts/bench.sh --quick: that it runs, not its figures)"
BENCH_PROFILE=dev scripts/bench.sh --quick
