#!/usr/bin/env bash
# Installs, only when missing, what building the portal needs: the wasm target,
# wasm-bindgen-cli (exactly the version in Cargo.lock) and Trunk, all from crates.io.
# With --test, also what the test suite needs: Chromium and ChromeDriver, and promtool
# (Debian package prometheus) and amtool (prometheus-alertmanager) for the alert-rule tests, and aiosmtpd (PyPI), the real SMTP
# server the mail tests send through, and panva's openid-client (npm), the certified relying
# party of the interoperability tests.
source "$(dirname "$0")/lib.sh"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "Adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  step "Installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  # Not --locked: its lockfile pins a crate version the registry no longer serves.
  cargo_install_tool wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --force
fi

if [ "$(trunk --version 2>/dev/null | awk '{print $2}')" != "$TRUNK_VERSION" ]; then
  step "Installing Trunk $TRUNK_VERSION (about 7 minutes, once)"
  # Without its default features: no update check and no TLS stack (it builds offline and
  # downloads nothing here): less to compile.
  cargo_install_tool --locked trunk --version "$TRUNK_VERSION" --no-default-features --force
fi

# npm_pinned <dir> <package>: `npm ci` in <dir> unless <package> is installed there at the
# version its package.json names.
npm_pinned() {
  local dir wanted installed
  dir="$(cd "$(dirname "$0")/../$1" && pwd)"
  wanted="$(node -p "require('$dir/package.json').dependencies['$2']")"
  installed="$(node -p "require('$dir/node_modules/$2/package.json').version" 2>/dev/null || true)"
  if [ "$installed" != "$wanted" ]; then
    step "Installing $2 $wanted (npm)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

if [ "${1:-}" = "--test" ]; then
  apt_install chromium chromium-driver prometheus prometheus-alertmanager openssl
  # The tests find it at $TOOLS_DIR/aiosmtpd-1.4.6 (idp/tests/common/smtp.rs).
  pip_tool aiosmtpd 1.4.6 aiosmtpd >/dev/null
  # Exactly what each package-lock.json pins: panva's openid-client, the certified relying
  # party of idp/tests/interop_openid_client.rs, and oidc-provider, the independent upstream
  # of idp/tests/federation.rs.
  npm_pinned e2e/openid-client openid-client
  npm_pinned e2e/oidc-provider oidc-provider
fi
