#!/usr/bin/env bash
# The dashboard (web/): `scripts/web.sh build` installs its npm packages (npm ci, from
# package-lock.json) when they changed and builds it into web/dist (codegen from
# schema/schema.graphql, the type check, vite); `scripts/web.sh browser` installs
# Debian's chromium for the browser tests when it is missing. Idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "[web] $*"; }

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

node_ok() {
    command -v node >/dev/null && command -v npm >/dev/null &&
        node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)||(a===20&&b>=19)?0:1)'
}

ensure_node() {
    if node_ok; then return; fi
    say "Node.js 20.19+ (or 22.12+) and npm are needed; trying apt-get install nodejs npm"
    sudo_if_needed apt-get update -qq
    sudo_if_needed apt-get install -y -qq nodejs npm >/dev/null
    if ! node_ok; then
        echo "[web] Node.js $(node --version 2>/dev/null || echo missing) is too old for Vite 7: install Node 20.19+ or 22.12+" >&2
        exit 1
    fi
}

# npm ci when package-lock.json changed since the last install (or in CI, always).
install() {
    ensure_node
    local stamp=web/node_modules/.coinfold-lock
    if [ "${CI:-}" = "true" ] || [ ! -f "$stamp" ] || ! cmp -s web/package-lock.json "$stamp"; then
        say "npm ci"
        (cd web && npm ci --no-audit --no-fund --loglevel=error)
        cp web/package-lock.json "$stamp"
    fi
}

case "${1:-build}" in
build)
    install
    say "npm run build (codegen, type check, vite)"
    (cd web && npm run --silent build)
    ;;
install)
    install
    ;;
browser)
    if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
        say "apt-get install chromium (the browser tests drive it with playwright-core)"
        sudo_if_needed apt-get update -qq
        sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    "${CHROMIUM:-/usr/bin/chromium}" --version
    ;;
*)
    echo "usage: scripts/web.sh [build|install|browser]" >&2
    exit 2
    ;;
esac
