#!/usr/bin/env bash
# The benchmark command (BENCHMARKS.md): brings the local services up (idempotent),
# installs wrk if missing, raises the open-files limit for the fan-out scenario, builds
# `coinfold` and `coinfold-bench` (release) and runs every scenario, each beside its raw
# ceiling, then the dashboard's figures (web/e2e/bench.mjs: page load, a 1,000-candle
# chart, the first page's JavaScript). Arguments go to coinfold-bench: --quick (small
# sizes, a smoke run), --json, --only commands,import,…, --subscribers N; `--only web`
# runs only the dashboard's figures, another `--only` skips them.
# BENCH_PROFILE=dev builds unoptimized (CI's smoke run: no second build of the
# workspace; its figures mean nothing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash deploy/local/up.sh >&2
# shellcheck source=/dev/null
set -a; source .local/env; set +a

if ! command -v wrk >/dev/null; then
    echo "[bench] installing wrk (the load generator of the queries scenario)" >&2
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get install -y -q wrk >&2
fi

# One descriptor per subscriber on each side: the bench and the server it starts.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"

profile="${BENCH_PROFILE:-release}"
case "$profile" in
    release) dir=release ;;
    dev) dir=debug ;;
    *) echo "[bench] BENCH_PROFILE is release or dev, not $profile" >&2; exit 2 ;;
esac
echo "[bench] building coinfold and coinfold-bench ($profile)" >&2
cargo build --profile "$profile" --locked --quiet -p coinfold-api -p coinfold-tests \
    --bin coinfold --bin coinfold-bench
# `--only web` runs only the dashboard's figures; another `--only` list skips them.
args=" $* "
if [[ "$args" != *" --only web "* ]]; then
    "target/$dir/coinfold-bench" "$@"
fi
if [[ "$args" == *" --only "* && "$args" != *" --only web "* ]]; then
    exit 0
fi
echo "[bench] the dashboard's figures (web/e2e/bench.mjs, headless chromium)" >&2
scripts/web.sh build >&2
scripts/web.sh browser >&2
quick=()
[[ "$args" == *" --quick "* ]] && quick=(--quick)
COINFOLD_BIN="$PWD/target/$dir/coinfold" node web/e2e/bench.mjs "${quick[@]}"
