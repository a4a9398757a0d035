#!/usr/bin/env bash
# Short bounded cargo-fuzz runs (libFuzzer, nightly) of every target in fuzz/: what parses
# untrusted input. FUZZ_SECONDS per target (default 15); a crash fails the run and leaves
# its input in fuzz/artifacts/<target>/ (turn it into a regression test). The corpus grows
# outside the clone; fuzz/seeds/ holds the checked-in starting inputs.
source "$(dirname "$0")/lib.sh"
cd "$ROOT/fuzz"

CARGO_FUZZ_VERSION="0.13.2"
if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  step "Installing cargo-fuzz $CARGO_FUZZ_VERSION (crates.io, once)"
  cargo_install_tool --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
if ! rustup toolchain list | grep -q '^nightly'; then
  step "Installing a nightly toolchain for cargo fuzz (rustup, once)"
  if ! rustup toolchain install nightly --profile minimal; then
    echo "cargo fuzz needs a nightly toolchain and rustup could not install one;" \
      "install it (rustup toolchain install nightly --profile minimal)" >&2
    exit 1
  fi
fi

TARGET_DIR="${FUZZ_TARGET_DIR:-/var/tmp/aimpact-fuzz-target}"
CORPUS_ROOT="${FUZZ_CORPUS_DIR:-/var/tmp/aimpact-fuzz-corpus}"
SECONDS_EACH="${FUZZ_SECONDS:-15}"
step "Fuzzing (${SECONDS_EACH}s per target, libFuzzer, no sanitizer: the code has no unsafe)"
# `-s none`: forbid(unsafe_code) leaves panics and hangs to find, which need no sanitizer.
# `--dev`: unoptimised, with overflow checks and debug assertions. Fewer inputs per second,
# which a 15-second smoke run can spare, for a much cheaper build than a release one (which
# took more than ten minutes of a CI run on a fresh machine).
# A target that does not build (a struct grew a field) shows its compiler errors, not only
# cargo-fuzz's backtrace.
if ! cargo +nightly fuzz build --dev -s none --target-dir "$TARGET_DIR" >"$TARGET_DIR.build.log" 2>&1; then
  grep -E '^(error|warning: unused)' -A 12 "$TARGET_DIR.build.log" | head -n 60 >&2
  echo "the fuzz targets do not build; full log: $TARGET_DIR.build.log" >&2
  exit 1
fi
for target in $(cargo +nightly fuzz list); do
  corpus="$CORPUS_ROOT/$target"
  mkdir -p "$corpus"
  cargo +nightly fuzz run --dev -s none --target-dir "$TARGET_DIR" "$target" "$corpus" "seeds/$target" -- \
    -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=5 -print_final_stats=1 2>&1 \
    | grep -E '^(stat::number_of_executed_units|Done|==|SUMMARY|.*panicked)' | sed "s/^/  $target: /"
  test "${PIPESTATUS[0]}" -eq 0 || { echo "fuzz target $target failed; see fuzz/artifacts/$target/" >&2; exit 1; }
done
