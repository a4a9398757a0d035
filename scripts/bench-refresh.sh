#!/usr/bin/env bash
# Refresh-token rotation under load on PostgreSQL (+ Redis), 127.0.0.1 only, bounded in time.
# (e2e/src/bin/refresh-load.rs can also drive the chains itself: give it SECONDS instead of 0.)
# Usage: scripts/bench-refresh.sh [seconds] [workers]
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
SECONDS_RUN="${1:-10}"; WORKERS="${2:-32}"
"$ROOT/scripts/services.sh"
apt_install wrk
# BENCH_BIN: an idp binary already built (another build, for an A/B comparison); unset, the
# workspace's is built.
if [ -z "${BENCH_BIN:-}" ]; then
  step "Building (release)"
  cargo build --release -p idp -p e2e --bin idp --bin refresh-load
fi
BIN="${BENCH_BIN:-$CARGO_TARGET_DIR/release/idp}"
DB="idp_bench_$$"
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $DB"
WORK="$(mktemp -d)"
cleanup() { [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null
            psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; rm -rf "$WORK"; }
trap cleanup EXIT
PORT=18444
export IDP_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" IDP_MASTER_KEY="$("$BIN" keys generate-master)"
export IDP_REDIS_URL=redis://127.0.0.1:6379 IDP_REDIS_KEY_PREFIX="bench:$$:" IDP_LOG_LEVEL=warn IDP_DATABASE_MAX_CONNECTIONS=${IDP_DATABASE_MAX_CONNECTIONS:-20}
export IDP_RATE_LIMIT_TOKEN_PER_MINUTE=0 IDP_RATE_LIMIT_LOGIN_IP_PER_MINUTE=0 IDP_RATE_LIMIT_LOGIN_ACCOUNT_PER_MINUTE=0
(cd "$WORK" && IDP_LISTEN=127.0.0.1:$PORT IDP_ISSUER=http://127.0.0.1:$PORT exec "$BIN" serve >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.1; done
printf '%s' 'bench-user-password' | "$BIN" user add bench --password-stdin >/dev/null
CLIENT=$("$BIN" client add --name refresh-bench --redirect-uri http://127.0.0.1:9/cb --first-party \
  --id-token-signing-alg ES256 --access-token-signing-alg ES256 --json)
ID=$(echo "$CLIENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
SECRET=$(echo "$CLIENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
# Each chain logs in once through the login form (refresh-load with 0 seconds prints the first
# refresh tokens, one spare: see the Lua script); wrk then carries every chain forward (scripts/bench/refresh_chain.lua).
"$CARGO_TARGET_DIR/release/refresh-load" "http://127.0.0.1:$PORT" "$ID" "$SECRET" bench bench-user-password \
  "$((WORKERS + 1))" 0 http://127.0.0.1:9/cb > "$WORK/tokens"
step "Refresh rotation on PostgreSQL: $WORKERS chains for $SECONDS_RUN s (wrk)"
# CPU time (clock ticks) of the idp process and of every PostgreSQL process.
ticks() { local total=0 stat; for pid in "$@"; do
            stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue; set -- ${stat##*) }
            total=$((total + ${12} + ${13})); done; echo "$total"; }
rotated() { psql -tA -h 127.0.0.1 -U postgres -d "$DB" -c "SELECT count(*) FROM refresh_tokens WHERE state = 'rotated'"; }
IDP0=$(ticks "$SERVER_PID"); PG0=$(ticks $(pgrep -x postgres)); R0=$(rotated)
TOKENS="$WORK/tokens" THREADS=1 AUTHORIZATION="Basic $(printf '%s:%s' "$ID" "$SECRET" | base64 -w0)" \
  wrk -t1 -c"$WORKERS" -d"${SECONDS_RUN}s" --latency -s scripts/bench/refresh_chain.lua \
  "http://127.0.0.1:$PORT/token" | grep -E "Requests/sec|Latency|50%|99%|non-200|Socket errors"
IDP1=$(ticks "$SERVER_PID"); PG1=$(ticks $(pgrep -x postgres)); R1=$(rotated)
python3 - "$((IDP1 - IDP0))" "$((PG1 - PG0))" "$((R1 - R0))" "$(getconf CLK_TCK)" <<'PY'
import sys
idp, pg, rotations, hz = map(int, sys.argv[1:])
per = lambda ticks: ticks / hz * 1e6 / max(rotations, 1)
print(f"CPU per rotation: idp {per(idp):.0f} us, PostgreSQL {per(pg):.0f} us")
PY
curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^idp_refresh_rotation_batch_size_sum/ { sum = $2 }
  /^idp_refresh_rotation_batch_size_count/ { n = $2 }
  END { if (n > 0) printf "rotations per PostgreSQL statement: %.1f on average over %d statements\n", sum / n, n }'
ROTATED=$(psql -tA -h 127.0.0.1 -U postgres -d "$DB" -c "SELECT count(*) FROM refresh_tokens WHERE state = 'rotated'")
REUSED=$(psql -tA -h 127.0.0.1 -U postgres -d "$DB" -c "SELECT count(*) FROM refresh_tokens WHERE state = 'revoked'")
echo "rotated tokens: $ROTATED, revoked (would mean a reuse): $REUSED"
