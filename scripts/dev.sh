#!/usr/bin/env bash
# Sets up and starts the identity provider with its admin portal on the embedded default
# (SQLite, in-process rate limits), on a fresh machine. The first run installs the portal's
# build tools and compiles everything (~15 minutes); later runs start in seconds.
# Extra arguments go to `idp serve`; settings come from IDP_* variables (docs/configuration.md).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/install-tools.sh"
"$ROOT/scripts/build-admin-ui.sh"
step "Building the server (release)"
cargo build --release -p idp
step "Starting the identity provider on ${IDP_LISTEN:-127.0.0.1:8080} (data in ${IDP_DATA_DIR:-./data}); Ctrl-C stops it"
note "Admin portal: ${IDP_ISSUER:-http://127.0.0.1:8080}/admin/"
exec "$CARGO_TARGET_DIR/release/idp" serve "$@"
