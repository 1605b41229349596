# Shared by the deploy/local scripts: paths, defaults and small helpers.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE="$ROOT/.local"        # git-ignored: data, logs, pid files, the env file
RUN="$STATE/run"
LOGS="$STATE/log"
DATA="$STATE/data"
ENV_FILE="$STATE/env"

TANSU_VERSION=0.6.0
TANSU_BIN=${TANSU_BIN:-${CARGO_HOME:-$HOME/.cargo}/bin/tansu}

# Local development credentials, not secrets: the services listen on loopback only.
DEFAULT_DATABASE_URL="postgres://coinfold:coinfold@127.0.0.1:5432/coinfold"
DEFAULT_REDIS_URL="redis://127.0.0.1:6379"
DEFAULT_KAFKA_BROKERS="127.0.0.1:9092"

say() { printf '[deploy/local] %s\n' "$*"; }
die() { printf '[deploy/local] error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

is_loopback() {
    case "$1" in
        127.*|localhost|::1|'[::1]') return 0 ;;
        *) return 1 ;;
    esac
}

# tcp_open HOST PORT: is something listening there?
tcp_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# wait_until SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_until() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
    say "$what"
}

# A pid file names a process we started and that still runs.
pid_alive() {
    local file=$1
    [ -f "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null
}

# Masks the password of a URL for printing.
mask_url() {
    printf '%s' "$1" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#'
}
