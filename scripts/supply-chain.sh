#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (deny.toml): known vulnerabilities and unmaintained
# crates (the RustSec database), licences, bans and sources; and that the server's own
# dependency tree reaches `rsa` only through webauthn-rs and openidconnect (RUSTSEC-2023-0071
# is about private keys; see below).
#
# Which RustSec database: $ADVISORY_DB when set (offline; it must exist), else a snapshot
# beside the checkout at ../shared/advisory-db when there is one (offline), else cargo-deny
# fetches the current database from its usual place (the network).
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
CARGO_DENY_VERSION="0.20.2"
if [ "$(cargo deny --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DENY_VERSION" ]; then
  step "Installing cargo-deny $CARGO_DENY_VERSION (a few minutes, once)"
  cargo_install_tool --locked cargo-deny --version "$CARGO_DENY_VERSION" --force
fi

if [ -n "${ADVISORY_DB:-}" ]; then
  step "cargo deny: advisories, bans, licences, sources (offline RustSec snapshot $ADVISORY_DB: $(head -c 40 "$ADVISORY_DB/SNAPSHOT" 2>/dev/null))"
  # cargo-deny opens the database as a git checkout named after its URL (deny.toml's
  # db-urls) under db-path: a copy of the snapshot (which may be read-only) made into one.
  DB_ROOT="$(mktemp -d)"
  trap 'rm -rf "$DB_ROOT"' EXIT
  copy="$DB_ROOT/advisory-db-3157b0e258782691"
  cp -r "$ADVISORY_DB/." "$copy/"
  if [ ! -d "$copy/.git" ]; then
    git -C "$copy" init -q
    git -C "$copy" add -A
    git -C "$copy" -c user.name=snapshot -c user.email=snapshot@localhost commit -q -m "RustSec snapshot"
  fi
  ADVISORY_DB_ROOT="$DB_ROOT" cargo deny --offline check
else
  step "cargo deny: advisories (fetching the current RustSec database; set ADVISORY_DB=<dir> to work offline), bans, licences, sources"
  cargo deny check
fi

step "rsa reaches the server only through webauthn-rs and openidconnect (public-key verification)"
# RUSTSEC-2023-0071 (Marvin) leaks a *private* key through the timing of decryption and
# signing. The server holds no RSA private key in `rsa`: its own keys live in aws-lc-rs;
# webauthn-rs (through crypto-glue) only verifies passkey signatures with public keys, and
# openidconnect only verifies upstream providers' ID tokens (federation authenticates to them
# with a client secret, never an RSA key). (`-i rsa` alone is ambiguous: two versions.)
dependents=""
for version in $(cargo tree -p idp -e normal --target all --prefix none | sed -n 's/^rsa v\([^ ]*\).*/\1/p' | sort -u); do
  dependents+=$(cargo tree -p idp -e normal --target all -i "rsa@$version" --depth 1 --prefix none \
    | grep -v '^rsa v' | sed 's/ v.*//' | sort -u | tr '\n' ' ')
done
for dependent in $dependents; do
  case "$dependent" in
    crypto-glue|openidconnect) ;;
    *)
      echo "rsa is used by the server through: $dependents(only crypto-glue, for webauthn-rs, and openidconnect are allowed)" >&2
      exit 1
      ;;
  esac
done

