#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the store contract suite on SQLite and PostgreSQL,
# HTTP and CLI tests, the browser tests in headless Chromium (screenshots in e2e/screenshots/),
# a schemathesis run of the admin API against its OpenAPI document, short cargo-fuzz runs
# of the parsers of untrusted input, the failover drill (scripts/drill.sh) and the
# disaster-recovery drill (scripts/dr-drill.sh). Installs and starts what
# it needs (idempotent). Extra arguments are passed to cargo nextest (e.g. a test filter).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/services.sh"
"$ROOT/scripts/install-tools.sh" --test
"$ROOT/scripts/build-admin-ui.sh"

step "Checking formatting"
cargo fmt --all --check

step "Static analysis (clippy, warnings are errors)"
cargo clippy -p idp -p e2e -p api-types --all-targets -- -D warnings
cargo clippy -p admin-ui --target wasm32-unknown-unknown -- -D warnings

"$ROOT/scripts/supply-chain.sh"

"$ROOT/scripts/check-deploy.sh"

step "Building the server and the tests"
# One build: the server the end-to-end tests and the drills run is the binary cargo builds
# for the integration tests (`cargo build -p idp` alone would resolve the dependencies'
# features differently and compile many of them a second time).
cargo test -p idp -p e2e --no-run --quiet
export IDP_BIN="$CARGO_TARGET_DIR/debug/idp"

step "Running the tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run -p idp -p e2e --no-fail-fast "$@"
else
  cargo test -p idp -p e2e --no-fail-fast "$@"
fi

# A filtered run (arguments given) is someone iterating on a few tests: skip the API fuzzing
# and the drills.
if [ "$#" -eq 0 ]; then
  "$ROOT/scripts/api-fuzz.sh"
  "$ROOT/scripts/fuzz.sh"
  "$ROOT/scripts/drill.sh"
  "$ROOT/scripts/dr-drill.sh"
fi

step "Screenshots of the browser tests: e2e/screenshots/"
ls e2e/screenshots/ 2>/dev/null | sed 's/^/  /'
if [ -n "${CI_ARTIFACTS_DIR:-}" ]; then
  mkdir -p "$CI_ARTIFACTS_DIR/screenshots" && cp e2e/screenshots/*.png "$CI_ARTIFACTS_DIR/screenshots/"
fi
