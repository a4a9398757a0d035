#!/usr/bin/env bash
# Supply-chain checks: known vulnerabilities (cargo-audit against the RustSec database),
# licences, bans and sources (cargo-deny, offline), and that the server's own dependency tree
# has no `rsa` crate (RUSTSEC-2023-0071 is tolerated only in tests).
#
# Which RustSec database: $ADVISORY_DB when set (offline; it must exist), else a snapshot
# beside the checkout at ../shared/advisory-db when there is one (offline), else cargo-audit
# fetches the current database from its usual place (the network, like any cargo-audit run).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

SNAPSHOT_BESIDE="$ROOT/../shared/advisory-db"
if [ -n "${ADVISORY_DB:-}" ]; then
  if [ ! -d "$ADVISORY_DB/crates" ]; then
    echo "ADVISORY_DB=$ADVISORY_DB is not a RustSec advisory database (no crates/ folder)" >&2
    exit 2
  fi
elif [ -d "$SNAPSHOT_BESIDE/crates" ]; then
  ADVISORY_DB="$SNAPSHOT_BESIDE"
fi
for tool in cargo-audit cargo-deny; do
  if ! command -v "$tool" >/dev/null; then
    step "Installing $tool (a few minutes, once)"
    env -u CARGO_TARGET_DIR CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
      cargo install --quiet --locked "$tool"
  fi
done

if [ -n "${ADVISORY_DB:-}" ]; then
  step "cargo audit (offline RustSec snapshot $ADVISORY_DB: $(cat "$ADVISORY_DB/SNAPSHOT" 2>/dev/null | head -c 40))"
  # The snapshot may be read-only: copy it so cargo-audit may write its lock file.
  DB_COPY="$(mktemp -d)"
  trap 'rm -rf "$DB_COPY"' EXIT
  cp -r "$ADVISORY_DB/." "$DB_COPY/"
  cargo audit --db "$DB_COPY" --no-fetch --deny warnings
else
  step "cargo audit (fetching the current RustSec database; set ADVISORY_DB=<dir> to work offline)"
  cargo audit --deny warnings
fi

step "The server links no rsa crate"
if cargo tree -p idp -e normal --target all --prefix none 2>/dev/null | grep -q '^rsa v'; then
  echo "rsa is in idp's normal dependencies: RUSTSEC-2023-0071 may only be tolerated in tests" >&2
  exit 1
fi

step "cargo deny (bans, licences, sources)"
cargo deny --offline check bans licenses sources
