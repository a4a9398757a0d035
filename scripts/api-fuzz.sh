#!/usr/bin/env bash
# Property-based run of the admin API against its own OpenAPI document (schemathesis, from
# PyPI, pinned): generated requests, valid and invalid, to every route with an
# administrator's token; fails on any 5xx or any answer that breaks the document. The
# stateful phase is left out: it follows ids from answers and soon revokes the fuzzer's own
# session (a legitimate call), after which every request is a 401.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

VENV="$(pip_tool schemathesis 4.32.5 schemathesis)"

IDP="${IDP_BIN:-$CARGO_TARGET_DIR/debug/idp}"
WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
PASSWORD="api-fuzz-admin-password"
(cd "$WORK" && IDP_LISTEN="127.0.0.1:$PORT" IDP_ISSUER="$BASE" IDP_BOOTSTRAP_ADMIN_PASSWORD="$PASSWORD" \
  IDP_THEMES_DIR="$ROOT/themes" IDP_RATE_LIMIT_ADMIN_PER_MINUTE=0 IDP_ACCESS_TOKEN_TTL_S=3600 \
  IDP_LOG_FORMAT=json exec "$IDP" serve > "$WORK/idp.log" 2>&1) &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  curl -fs "$BASE/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

step "Fuzzing the admin API against /admin/api/openapi.json (schemathesis)"
TOKEN="$(printf '%s' "$PASSWORD" | python3 "$ROOT/scripts/admin-token.py" "$BASE" admin)"
"$VENV/bin/schemathesis" run "$BASE/admin/api/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${API_FUZZ_EXAMPLES:-25}" \
  --seed 42 \
  --phases examples,coverage,fuzzing \
  --request-timeout 10 \
  --no-color
# actix-http logs unparsable requests (the fuzzer's invalid headers) at ERROR; those were
# answered 400 before reaching the application and are not ours.
if grep '"level":"ERROR"' "$WORK/idp.log" | grep -v '"target":"actix_http::h1::dispatcher"' | grep -q .; then
  echo "the server logged errors during the run:" >&2
  grep '"level":"ERROR"' "$WORK/idp.log" | grep -v actix_http | head -5 >&2
  exit 1
fi
