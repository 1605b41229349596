#!/usr/bin/env bash
# Makes PostgreSQL, Redis and the Kafka-protocol broker (tansu) available on 127.0.0.1,
# installing and starting only what is missing. Idempotent: run it as often as you like;
# when everything answers it starts nothing. Writes .local/env with the three URLs and
# this machine's access-token signing secret.
#
#   deploy/local/up.sh            # then: source .local/env
#
# Honours DATABASE_URL, REDIS_URL and KAFKA_BROKERS when set; only loopback addresses
# are ever started here. Stop what this script started with deploy/local/down.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DATABASE_URL=${DATABASE_URL:-$DEFAULT_DATABASE_URL}
REDIS_URL=${REDIS_URL:-$DEFAULT_REDIS_URL}
KAFKA_BROKERS=${KAFKA_BROKERS:-$DEFAULT_KAFKA_BROKERS}

mkdir -p "$RUN" "$LOGS" "$DATA"

# ---------------------------------------------------------------- PostgreSQL
[[ "$DATABASE_URL" =~ ^postgres(ql)?://([^:@/]+)(:([^@/]*))?@([^:/?]+)(:([0-9]+))?/([^?]+) ]] \
    || die "DATABASE_URL must look like postgres://USER:PASSWORD@HOST:PORT/DATABASE"
PG_USER=${BASH_REMATCH[2]}
PG_PASSWORD=${BASH_REMATCH[4]}
PG_HOST=${BASH_REMATCH[5]}
PG_PORT=${BASH_REMATCH[7]:-5432}
PG_DB=${BASH_REMATCH[8]}

postgres_answers() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }
postgres_accepts_us() { psql "$DATABASE_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; }

ensure_postgres() {
    command -v pg_isready >/dev/null || apt_install postgresql-client
    if postgres_answers; then
        say "PostgreSQL answers on $PG_HOST:$PG_PORT"
    else
        is_loopback "$PG_HOST" || die "PostgreSQL at $PG_HOST:$PG_PORT does not answer, and it is not local: start it yourself"
        ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || apt_install postgresql
        local version status
        version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
        if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$version main"; then
            say "creating PostgreSQL $version cluster main (port $PG_PORT, loopback only)"
            as_root pg_createcluster "$version" main --port "$PG_PORT" -- --auth-local=peer --auth-host=scram-sha-256 >/dev/null
        fi
        # The package's own scripts may have started it meanwhile.
        status=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}')
        if [ "$status" != online ]; then
            say "starting PostgreSQL $version/main"
            as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
            echo "$version main" > "$RUN/postgres.started"
        fi
        wait_until 60 "PostgreSQL is up" postgres_answers || die "PostgreSQL did not come up; see /var/log/postgresql/"
    fi
    if postgres_accepts_us; then
        say "database $PG_DB accepts $PG_USER"
        return
    fi
    is_loopback "$PG_HOST" || die "cannot log in to $(mask_url "$DATABASE_URL"), and it is not local: create the role yourself"
    say "creating role $PG_USER and database $PG_DB"
    # The role may create databases: each test gets its own.
    as_postgres psql -v ON_ERROR_STOP=1 -p "$PG_PORT" -qAt \
        -v user="$PG_USER" -v password="$PG_PASSWORD" -v db="$PG_DB" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
    postgres_accepts_us || die "still cannot log in to $(mask_url "$DATABASE_URL"); check pg_hba.conf"
}

# --------------------------------------------------------------------- Redis
[[ "$REDIS_URL" =~ ^rediss?://([^@/]*@)?([^:/]+)(:([0-9]+))? ]] || die "REDIS_URL must look like redis://HOST:PORT"
REDIS_HOST=${BASH_REMATCH[2]}
REDIS_PORT=${BASH_REMATCH[4]:-6379}

redis_answers() { [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

ensure_redis() {
    command -v redis-cli >/dev/null || apt_install redis-tools
    if redis_answers; then
        say "Redis answers on $REDIS_HOST:$REDIS_PORT"
        return
    fi
    is_loopback "$REDIS_HOST" || die "Redis at $REDIS_HOST:$REDIS_PORT does not answer, and it is not local: start it yourself"
    command -v redis-server >/dev/null || apt_install redis-server
    # Installing the package may have started Debian's own instance.
    if redis_answers; then
        say "Redis answers on $REDIS_HOST:$REDIS_PORT"
        return
    fi
    mkdir -p "$DATA/redis"
    say "starting Redis on 127.0.0.1:$REDIS_PORT"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
        --save '' --appendonly no --dir "$DATA/redis" \
        --pidfile "$RUN/redis.pid" --logfile "$LOGS/redis.log"
    wait_until 30 "Redis is up" redis_answers || die "Redis did not come up; see $LOGS/redis.log"
}

# -------------------------------------------------------------------- tansu
[[ "$KAFKA_BROKERS" =~ ^([^:,]+):([0-9]+) ]] || die "KAFKA_BROKERS must look like HOST:PORT"
KAFKA_HOST=${BASH_REMATCH[1]}
KAFKA_PORT=${BASH_REMATCH[2]}

broker_answers() { tcp_open "$KAFKA_HOST" "$KAFKA_PORT"; }

install_tansu() {
    if [ -x "$TANSU_BIN" ] && "$TANSU_BIN" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
        return
    fi
    command -v cargo >/dev/null || die "cargo is needed to build tansu (install Rust with rustup)"
    # C toolchains for its -sys crates (SQLite, zstd, lz4, aws-lc) and bindgen's libclang.
    local missing=()
    for pkg in build-essential pkg-config cmake libclang-dev libssl-dev zlib1g-dev; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
    say "building tansu $TANSU_VERSION with cargo install (20-35 minutes on 2 cores; log: $LOGS/tansu-install.log)"
    cargo install tansu --version "$TANSU_VERSION" --locked --features libsql,postgres,dynostore \
        > "$LOGS/tansu-install.log" 2>&1 || { tail -n 30 "$LOGS/tansu-install.log" >&2; die "building tansu failed"; }
    [ -x "$TANSU_BIN" ] || die "tansu was built but is not at $TANSU_BIN (set TANSU_BIN)"
}

ensure_broker() {
    if broker_answers; then
        say "Kafka broker answers on $KAFKA_HOST:$KAFKA_PORT"
        return
    fi
    is_loopback "$KAFKA_HOST" || die "the broker at $KAFKA_HOST:$KAFKA_PORT does not answer, and it is not local: start it yourself"
    install_tansu
    mkdir -p "$DATA/tansu"
    say "starting tansu on 127.0.0.1:$KAFKA_PORT (SQLite storage in $DATA/tansu)"
    # SQLite keeps topics, records and committed offsets across restarts. tansu would
    # export its own traces to OTEL_EXPORTER_OTLP_ENDPOINT if it were set: it is not ours.
    (
        cd "$DATA/tansu"
        nohup env -u OTEL_EXPORTER_OTLP_ENDPOINT "$TANSU_BIN" broker \
            --kafka-cluster-id coinfold \
            --kafka-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
            --kafka-advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
            --storage-engine "sqlite://tansu.db" \
            >> "$LOGS/tansu.log" 2>&1 < /dev/null &
        echo $! > "$RUN/tansu.pid"
    )
    # tansu resolves the SQLite path against its working directory, set above.
    tansu_up_or_dead() { broker_answers || ! pid_alive "$RUN/tansu.pid"; }
    wait_until 60 "tansu answers" tansu_up_or_dead && broker_answers \
        || { tail -n 20 "$LOGS/tansu.log" >&2; rm -f "$RUN/tansu.pid"; die "tansu did not come up; see $LOGS/tansu.log"; }
}

# tansu 0.6's SQLite schema has no index on its `header` table, and its fetch reads a
# record's headers with one query per record: each scans every header ever stored, so
# a consumer that joins a topic with a backlog spends minutes in one fetch, its group
# heartbeats queue behind it on the single storage task, and the session times out,
# again and again. An index makes that lookup a seek. Idempotent; only for the broker
# this script runs (its database file is here).
index_tansu_headers() {
    local db="$DATA/tansu/tansu.db"
    [ -f "$db" ] || return 0
    command -v sqlite3 >/dev/null || apt_install sqlite3
    header_table() { [ -n "$(sqlite3 "$db" "SELECT 1 FROM sqlite_master WHERE name = 'header'" 2>/dev/null)" ]; }
    wait_until 30 "indexing the broker's header lookups (tansu 0.6 has no index there)" header_table || die "tansu's database has no header table: $db"
    sqlite3 -cmd ".timeout 10000" "$db" \
        "CREATE INDEX IF NOT EXISTS coinfold_header_record ON header (topition, offset_id)" \
        || die "indexing tansu's header table failed ($db)"
}

ensure_postgres
ensure_redis
ensure_broker
index_tansu_headers

umask 077
# This machine's access-token signing secret, made once and kept (a new one would log
# everybody out). Honoured when already set.
SECRET_FILE="$STATE/jwt-secret"
if [ -z "${COINFOLD_AUTH__JWT_SECRET:-}" ]; then
    [ -s "$SECRET_FILE" ] || od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$SECRET_FILE"
    COINFOLD_AUTH__JWT_SECRET=$(cat "$SECRET_FILE")
fi
cat > "$ENV_FILE" <<ENV
export DATABASE_URL='$DATABASE_URL'
export REDIS_URL='$REDIS_URL'
export KAFKA_BROKERS='$KAFKA_BROKERS'
export COINFOLD_AUTH__JWT_SECRET='$COINFOLD_AUTH__JWT_SECRET'
ENV
say "ready:"
say "  DATABASE_URL=$(mask_url "$DATABASE_URL")"
say "  REDIS_URL=$(mask_url "$REDIS_URL")"
say "  KAFKA_BROKERS=$KAFKA_BROKERS"
say "load them with: source .local/env"
