#!/usr/bin/env bash
# The test command: brings the local services up (idempotent), then the dashboard's
# build (type check included) and unit tests, formatting, lints, the deployment files'
# checks, every test of the workspace against the real PostgreSQL, Redis and broker,
# and the dashboard's journey in a real browser against `coinfold demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

deploy/local/up.sh
# shellcheck source=/dev/null
source .local/env

echo "== web: npm ci, codegen from schema/schema.graphql, type check, vite build"
scripts/web.sh build
echo "== web: unit and component tests (vitest)"
(cd web && npx vitest run)
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== deployment files (scripts/check-deploy.sh)"
scripts/check-deploy.sh
echo "== cargo test"
# --show-output prints what passing tests report (e.g. the global log's counts).
cargo test --workspace --locked -- --show-output
echo "== web: the browser journey (playwright-core driving chromium, axe-core)"
scripts/web.sh browser
cargo build --locked -p coinfold-api --bin coinfold
(cd web && COINFOLD_BIN="$PWD/../target/debug/coinfold" node e2e/journey.mjs)
echo "== benchmark smoke run (scripts/bench.sh --quick: that it runs, not its figures)"
BENCH_PROFILE=dev scripts/bench.sh --quick
