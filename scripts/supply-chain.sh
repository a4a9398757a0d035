#!/usr/bin/env bash
# Supply-chain checks: known vulnerabilities (cargo-audit against the RustSec database),
# licences, bans and sources (cargo-deny, offline), and that the server's own dependency tree
# reaches `rsa` only through webauthn-rs (RUSTSEC-2023-0071 is about private keys; see below).
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

step "rsa reaches the server only through webauthn-rs (verifying RS256 passkey signatures)"
# RUSTSEC-2023-0071 (Marvin) leaks a *private* key through the timing of decryption and
# signing. The server holds no RSA private key in `rsa`: its own keys live in aws-lc-rs, and
# webauthn-rs (through crypto-glue) only verifies passkey signatures with public keys.
# (`-i rsa` alone is ambiguous: the tests' openidconnect brings another rsa version.)
dependents=""
for version in $(cargo tree -p idp -e normal --target all --prefix none | sed -n 's/^rsa v\([^ ]*\).*/\1/p' | sort -u); do
  dependents+=$(cargo tree -p idp -e normal --target all -i "rsa@$version" --depth 1 --prefix none \
    | grep -v '^rsa v' | sed 's/ v.*//' | sort -u | tr '\n' ' ')
done
if [ -n "$dependents" ] && [ "$dependents" != "crypto-glue " ]; then
  echo "rsa is used by the server through: $dependents(only crypto-glue, for webauthn-rs, is allowed)" >&2
  exit 1
fi

step "cargo deny (bans, licences, sources)"
cargo deny --offline check bans licenses sources
