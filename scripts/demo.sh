#!/usr/bin/env bash
# The run command: brings the local services up (idempotent), applies the migrations,
# plays the shipped market and news recordings into the topics (ten times faster than
# recorded) and serves the API on 127.0.0.1:8080. Ctrl-C stops both.
# (`coinfold demo`, with seeded users, replaces this once it exists: docs/ARCHITECTURE.md.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

deploy/local/up.sh
# shellcheck source=/dev/null
source .local/env

cargo build --release --locked -p coinfold-api --bin coinfold
bin=target/release/coinfold
"$bin" migrate
"$bin" ingest --replay recordings --speed 10 &
ingest=$!
trap 'kill -INT "$ingest" 2>/dev/null; wait "$ingest"' EXIT
"$bin" serve
