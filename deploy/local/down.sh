#!/usr/bin/env bash
# Stops what deploy/local/up.sh started, and nothing else: processes named by the pid
# files under .local/run. Data stays in .local/data.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stopped=0
for name in tansu redis; do
    file="$RUN/$name.pid"
    [ -f "$file" ] || continue
    if pid_alive "$file"; then
        pid=$(cat "$file")
        say "stopping $name (pid $pid)"
        kill "$pid"
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        stopped=$((stopped + 1))
    fi
    rm -f "$file"
done
if [ -f "$RUN/postgres.started" ]; then
    read -r version cluster < "$RUN/postgres.started"
    say "stopping PostgreSQL $version/$cluster"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" stop || true
    rm -f "$RUN/postgres.started"
    stopped=$((stopped + 1))
fi
say "stopped $stopped service(s)"
