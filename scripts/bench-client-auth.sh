#!/usr/bin/env bash
# Token requests by client authentication method, against a release build on 127.0.0.1 only
# (PostgreSQL and Redis, as in production: the jti and DPoP replay caches are Redis):
# client_secret_basic, private_key_jwt (an ES256 assertion per request), and private_key_jwt
# with a DPoP proof (a second ES256 signature, a bound token).
# Usage: scripts/bench-client-auth.sh [seconds-per-run] [workers]   (copy the output to docs/benchmarks.md)
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/services.sh"
DURATION="${1:-10}"
WORKERS="${2:-32}"
step "Building the release binaries"
cargo build --release -p idp -p e2e --bin idp --bin token-load
BIN="$CARGO_TARGET_DIR/release/idp"
LOAD="$CARGO_TARGET_DIR/release/token-load"
WORK="$(mktemp -d)"
DB="bench_client_auth_$$"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"; psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null' EXIT
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $DB"
PORT=18444
export IDP_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" IDP_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
export IDP_LISTEN=127.0.0.1:$PORT IDP_ISSUER=http://127.0.0.1:$PORT IDP_LOG_LEVEL=warn
export IDP_BOOTSTRAP_ADMIN_PASSWORD=bench-admin-password IDP_RATE_LIMIT_TOKEN_PER_MINUTE=0
# ES256 access tokens (as in docs/benchmarks.md): the signature costs little next to the checks.
export IDP_ACCESS_TOKEN_SIGNING_ALG=ES256
export IDP_REDIS_URL=redis://127.0.0.1:6379 IDP_REDIS_KEY_PREFIX="bench:$$:"
(cd "$WORK" && exec "$BIN" serve >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

"$LOAD" keygen "$WORK/jwks.json" "$WORK/key.der"
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
add() { "$BIN" client add --name "bench-$1" --grant-type client_credentials --scope api --json "${@:2}"; }
BASIC=$(add basic)
JWT=$(add jwt --token-endpoint-auth-method private_key_jwt --jwks "$WORK/jwks.json")
DPOP=$(add dpop --token-endpoint-auth-method private_key_jwt --jwks "$WORK/jwks.json" --dpop-bound-access-tokens)

ticks() { local stat; stat=$(cat "/proc/$1/stat"); set -- ${stat##*) }; echo $((${12} + ${13})); }
run() {  # run NAME CLIENT_ID AUTH
  step "$1 ($WORKERS connections, ${DURATION}s)"
  local t0 out; t0=$(ticks "$SERVER_PID")
  out=$("$LOAD" run "http://127.0.0.1:$PORT" "$2" "$3" "$WORKERS" "$DURATION")
  echo "$out"
  local requests; requests=$(echo "$out" | awk '/requests in/ { print $2 }')
  python3 -c "import sys; t, n, hz = map(int, sys.argv[1:]); print(f'server CPU per token request: {t / hz * 1e6 / max(n, 1):.0f} us')" \
    "$(( $(ticks "$SERVER_PID") - t0 ))" "$requests" "$(getconf CLK_TCK)"
}
run "client_secret_basic" "$(echo "$BASIC" | field client_id)" "basic:$(echo "$BASIC" | field client_secret)"
run "private_key_jwt (ES256)" "$(echo "$JWT" | field client_id)" "jwt:$WORK/key.der"
run "private_key_jwt + DPoP (ES256)" "$(echo "$DPOP" | field client_id)" "dpop:$WORK/key.der"
