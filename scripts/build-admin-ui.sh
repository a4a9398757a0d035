#!/usr/bin/env bash
# Builds the admin portal into admin-ui/dist with Trunk, offline.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
step "Building the admin portal (Trunk, release)"
trunk build --release --offline 2>&1 | grep -vE '^\s*$' | tail -n 3
test -f admin-ui/dist/index.html
