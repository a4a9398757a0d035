#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the store contract suite on SQLite and PostgreSQL,
# HTTP and CLI tests, the browser tests in headless Chromium (screenshots in e2e/screenshots/),
# a schemathesis run of the admin API against its OpenAPI document, short cargo-fuzz runs
# of the parsers of untrusted input, the failover drill (scripts/drill.sh) and the
# disaster-recovery drill (scripts/dr-drill.sh), and a one-minute load test on each backend
# (scripts/loadtest.sh smoke). Installs and starts what it needs (idempotent). Extra
# arguments are passed to cargo nextest (e.g. a test filter).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/services.sh"
"$ROOT/scripts/install-tools.sh" --test

# Clippy's lints run inside the builds (warnings are errors): clippy-driver wraps rustc for
# this workspace's crates, as `cargo clippy` does, but with code generation, so the
# dependencies are compiled once for the lints and the tests instead of twice. Every cargo
# command on the workspace below runs with it (without it, the workspace's crates would
# rebuild); the fuzz targets, on nightly, run without it.
with_clippy() {
  RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)" \
    CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" "$@"
}

with_clippy "$ROOT/scripts/build-admin-ui.sh"

step "Checking formatting"
cargo fmt --all --check

"$ROOT/scripts/supply-chain.sh"

"$ROOT/scripts/check-deploy.sh"

step "Building the server and the tests, with clippy's lints"
# One build: the server the end-to-end tests and the drills run is the binary cargo builds
# for the integration tests (`cargo build -p idp` alone would resolve the dependencies'
# features differently and compile many of them a second time).
with_clippy cargo test -p idp -p e2e -p api-types --all-targets --no-run --quiet
export IDP_BIN="$CARGO_TARGET_DIR/debug/idp"

step "Running the tests"
if cargo nextest --version >/dev/null 2>&1; then
  with_clippy cargo nextest run -p idp -p e2e --no-fail-fast "$@"
else
  with_clippy cargo test -p idp -p e2e --no-fail-fast "$@"
fi

# A filtered run (arguments given) is someone iterating on a few tests: skip the API fuzzing
# and the drills.
if [ "$#" -eq 0 ]; then
  "$ROOT/scripts/api-fuzz.sh"
  "$ROOT/scripts/fuzz.sh"
  "$ROOT/scripts/drill.sh"
  "$ROOT/scripts/dr-drill.sh"
  # One minute of the load test's whole mix on each backend (relaxed objectives): the
  # journeys, the data generator and the report keep working.
  "$ROOT/scripts/loadtest.sh" smoke --backend sqlite --out "$ROOT/loadtest/results/ci-smoke-sqlite"
  "$ROOT/scripts/loadtest.sh" smoke --backend postgres --out "$ROOT/loadtest/results/ci-smoke-postgres"
fi

step "Screenshots of the browser tests: e2e/screenshots/"
ls e2e/screenshots/ 2>/dev/null | sed 's/^/  /'
if [ -n "${CI_ARTIFACTS_DIR:-}" ]; then
  mkdir -p "$CI_ARTIFACTS_DIR/screenshots" && cp e2e/screenshots/*.png "$CI_ARTIFACTS_DIR/screenshots/"
fi
