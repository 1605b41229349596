#!/usr/bin/env bash
# The run command: builds the `coinfold` binary (release) and runs `coinfold demo`,
# which brings the local services up (deploy/local/up.sh, idempotent), applies the
# migrations, runs every role in one process on the shipped market and news
# recordings, seeds two users through the GraphQL API and prints what moves, until
# Ctrl-C, with the dashboard (web/, built first) at http://127.0.0.1:8080/. Arguments
# go to `coinfold demo` (e.g. --speed 10, --for-seconds 120).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null; then
    echo "[demo] cargo is missing: install Rust with rustup first" >&2
    exit 1
fi
# The broker's build needs cmake and libclang; rdkafka's needs a C compiler. up.sh
# installs them with the services, so run it before the first build.
bash deploy/local/up.sh
echo "[demo] building the dashboard (web/: npm ci, npm run build)"
scripts/web.sh build
echo "[demo] building coinfold (release; the first build takes several minutes)"
cargo build --release --locked --quiet -p coinfold-api --bin coinfold
exec target/release/coinfold demo --no-up "$@"
