# Shared by the scripts in this folder: progress messages, the cargo target cache, PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# A persistent build cache outside the clone: fresh clones (CI) reuse compiled dependencies.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/aimpact-target}"
export PATH="$HOME/.cargo/bin:$PATH"
export TRUNK_SKIP_VERSION_CHECK=true

WASM_BINDGEN_VERSION="0.2.130"
TRUNK_VERSION="0.21.14"

# Each step says when it started (how long the stages of a CI run take).
step() { printf '\033[1;34m==>\033[0m [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
note() { printf '    %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "Installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A tool from crates.io, release-built without LTO (faster to build, as fast for a tool) in
# one target directory shared by all of them, outside the clone: their common dependencies
# are compiled once, and a reinstall reuses what is there. Usage: cargo_install_tool ARGS...
cargo_install_tool() {
  CARGO_TARGET_DIR="${INSTALL_TARGET_DIR:-/var/tmp/aimpact-install-target}" \
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --quiet "$@"
}

# A Python tool from PyPI, pinned, in its own venv under the tools cache (installed once);
# prints the venv's path. Usage: VENV="$(pip_tool schemathesis 4.32.5 schemathesis)"
pip_tool() {
  local package="$1" version="$2" command="$3"
  local venv="${TOOLS_DIR:-/var/tmp/aimpact-tools}/$package-$version"
  if [ ! -x "$venv/bin/$command" ]; then
    step "Installing $package $version (PyPI, once)" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "$package==$version" >&2
  fi
  echo "$venv"
}

# The drills' common start: the server (built when missing) in IDP_BIN, and a scratch
# directory in WORK, removed on exit. Usage: drill_prepare NAME
drill_prepare() {
  IDP_BIN="${IDP_BIN:-$CARGO_TARGET_DIR/debug/idp}"
  if [ ! -x "$IDP_BIN" ]; then
    step "Building the server"
    cargo build -p idp
  fi
  WORK="$(mktemp -d "/var/tmp/aimpact-$1.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
}

# After a failed drill: the end of each of its logs. Usage: drill_logs FILE...
drill_logs() {
  for log in "$@"; do
    if [ -f "$log" ]; then echo "== $log (last lines)"; tail -n 15 "$log"; fi
  done
}
