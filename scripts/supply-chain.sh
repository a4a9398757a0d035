#!/usr/bin/env bash
# Supply-chain checks: known vulnerabilities (cargo-audit, offline RustSec snapshot from
# ../shared/advisory-db), licences, bans and sources (cargo-deny, offline), and that the
# server's own dependency tree has no `rsa` crate (RUSTSEC-2023-0071 is tolerated only in tests).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ADVISORY_DB="${ADVISORY_DB:-$ROOT/../shared/advisory-db}"
for tool in cargo-audit cargo-deny; do
  if ! command -v "$tool" >/dev/null; then
    step "Installing $tool (a few minutes, once)"
    env -u CARGO_TARGET_DIR CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
      cargo install --quiet --locked "$tool"
  fi
done

if [ ! -d "$ADVISORY_DB/crates" ]; then
  echo "RustSec advisory database not found at $ADVISORY_DB (set ADVISORY_DB)" >&2
  exit 1
fi
step "cargo audit (RustSec snapshot: $(cat "$ADVISORY_DB/SNAPSHOT" 2>/dev/null | head -c 40))"
# The database is read-only here: copy it so cargo-audit may write its lock file.
DB_COPY="$(mktemp -d)"
trap 'rm -rf "$DB_COPY"' EXIT
cp -r "$ADVISORY_DB/." "$DB_COPY/"
cargo audit --db "$DB_COPY" --no-fetch --deny warnings

step "The server links no rsa crate"
if cargo tree -p idp -e normal --target all --prefix none 2>/dev/null | grep -q '^rsa v'; then
  echo "rsa is in idp's normal dependencies: RUSTSEC-2023-0071 may only be tolerated in tests" >&2
  exit 1
fi

step "cargo deny (bans, licences, sources)"
cargo deny --offline check bans licenses sources
