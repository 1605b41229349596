#!/usr/bin/env bash
# The run command: brings the local services up (idempotent), applies the migrations
# and serves the API on 127.0.0.1:8080. (`coinfold demo`, with seeded users and a
# replayed market feed, replaces `serve` here once it exists: see docs/ARCHITECTURE.md.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

deploy/local/up.sh
# shellcheck source=/dev/null
source .local/env

cargo run --release --locked -p coinfold-api --bin coinfold -- migrate
exec cargo run --release --locked -p coinfold-api --bin coinfold -- serve
