#!/usr/bin/env bash
# Load benchmarks against a release build on 127.0.0.1 only, bounded in time:
# discovery, JWKS, and client_credentials with ES256 and RS256 access tokens.
# Usage: scripts/bench.sh [seconds-per-run]   (results go to stdout; copy them to docs/benchmarks.md)
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/services.sh"
DURATION="${1:-10}"
apt_install wrk
step "Building the release binary"
cargo build --release -p idp
BIN="$CARGO_TARGET_DIR/release/idp"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT
PORT=18443

SERVER_PID=""
start() {  # start ALG: (re)starts the server with ALG access tokens
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; fi
  (cd "$WORK" && IDP_LISTEN=127.0.0.1:$PORT IDP_ISSUER=http://127.0.0.1:$PORT IDP_LOG_LEVEL=warn \
     IDP_ACCESS_TOKEN_SIGNING_ALG="$1" IDP_BOOTSTRAP_ADMIN_PASSWORD=bench-admin-password \
     IDP_RATE_LIMIT_TOKEN_PER_MINUTE=0 IDP_RATE_LIMIT_INTROSPECT_PER_MINUTE=0 \
     IDP_REDIS_URL=redis://127.0.0.1:6379 IDP_REDIS_KEY_PREFIX="bench:$$:" \
     exec "$BIN" serve >"$WORK/server.log" 2>&1) &
  SERVER_PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.1; done
  echo "server did not start"; cat "$WORK/server.log"; exit 1
}

start ES256
CLIENT=$(cd "$WORK" && "$BIN" client add --name bench --grant-type client_credentials --scope api --json)
export CLIENT_ID=$(echo "$CLIENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
export CLIENT_SECRET=$(echo "$CLIENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')

run() {  # run NAME URL [wrk args...]
  local name="$1" url="$2"; shift 2
  step "$name"
  wrk -t2 -c64 -d"${DURATION}s" --latency "$@" "$url" | grep -E "Requests/sec|Latency|50%|99%|non-200|Socket errors"
}

run "discovery" "http://127.0.0.1:$PORT/.well-known/openid-configuration"
run "jwks" "http://127.0.0.1:$PORT/jwks"
run "client_credentials (ES256)" "http://127.0.0.1:$PORT/token" -s scripts/bench/basic_post.lua
ACCESS=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials "http://127.0.0.1:$PORT/token" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
export BODY="token=$ACCESS"
run "introspection of an ES256 access token (Redis deny-list)" "http://127.0.0.1:$PORT/introspect" \
  -s scripts/bench/basic_post.lua
unset BODY
start RS256
run "client_credentials (RS256)" "http://127.0.0.1:$PORT/token" -s scripts/bench/basic_post.lua
ACCESS=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials "http://127.0.0.1:$PORT/token" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
export BODY="token=$ACCESS"
run "introspection of an RS256 access token, the default (Redis deny-list)" "http://127.0.0.1:$PORT/introspect" \
  -s scripts/bench/basic_post.lua
run "introspection of an RS256 access token, 32 connections" "http://127.0.0.1:$PORT/introspect" \
  -c32 -s scripts/bench/basic_post.lua
unset BODY
run "client_credentials (RS256, 8 connections)" "http://127.0.0.1:$PORT/token" -c8 -s scripts/bench/basic_post.lua
start EdDSA
run "client_credentials (EdDSA)" "http://127.0.0.1:$PORT/token" -s scripts/bench/basic_post.lua
step "Browser logins, with and without a second factor (20 users, one after another)"
for i in $(seq 0 19); do
  printf 'bench login passphrase 42' | (cd "$WORK" && "$BIN" user add "login$i" --password-stdin >/dev/null)
done
client_id() { python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])'; }
LOGIN_CLIENT=$(cd "$WORK" && "$BIN" client add --name login --public --first-party --redirect-uri http://127.0.0.1:9/cb --json | client_id)
MFA_CLIENT=$(cd "$WORK" && "$BIN" client add --name login-mfa --public --first-party --redirect-uri http://127.0.0.1:9/cb --mfa required --json | client_id)
python3 "$ROOT/scripts/bench-login.py" "http://127.0.0.1:$PORT" "$LOGIN_CLIENT" "$MFA_CLIENT" login 20 'bench login passphrase 42'
step "Start-up to ready on an existing SQLite database (5 runs)"
for _ in 1 2 3 4 5; do
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  t0=$(date +%s%N)
  (cd "$WORK" && IDP_LISTEN=127.0.0.1:$PORT IDP_ISSUER=http://127.0.0.1:$PORT IDP_LOG_LEVEL=warn exec "$BIN" serve >>"$WORK/server.log" 2>&1) &
  SERVER_PID=$!
  until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.005; done
  echo "ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
done
sleep 2
step "Idle memory"
grep -E "VmRSS|VmHWM" "/proc/$SERVER_PID/status"
