#!/usr/bin/env bash
# Load tests with Locust (loadtest/): the IdP's real callers in the mix of loadtest/mix.toml,
# on representative data, in a shape of loadtest/shapes.toml, judged against
# loadtest/slas.toml. Writes the report (summary.md, charts, Locust's HTML report and CSV)
# to the output directory and exits non-zero when an objective is missed. 127.0.0.1 only.
#
# Usage: scripts/loadtest.sh SHAPE [options]
#   SHAPE            smoke (1 min, CI), ramp (step ramp to saturation, about 8 min), soak
#                    (30 min), spike (4 min), or capacity (each operation alone, 1 min each)
#   --backend B      sqlite (the embedded default; default) or postgres (the production
#                    topology of scripts/drill/topology.py: PostgreSQL with a synchronous
#                    standby, Redis with Sentinel, HAProxy; run as root)
#   --replicas N     IdP replicas behind HAProxy with --backend postgres (1-3; default 3)
#   --release        a release build (the default is the debug build the tests use)
#   --processes N    Locust processes (default 1; each takes about one core at full speed)
#   --data "ARGS"    data generator arguments, e.g. "--users 100000 --refresh-tokens 1000000"
#   --out DIR        default loadtest/results/SHAPE-BACKEND-TIME
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

SHAPE="${1:?usage: scripts/loadtest.sh smoke|ramp|soak|spike|capacity [options]}"
shift
BACKEND=sqlite REPLICAS=3 PROFILE=debug PROCESSES=1 DATA="" OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) BACKEND="$2"; shift 2 ;;
    --replicas) REPLICAS="$2"; shift 2 ;;
    --release) PROFILE=release; shift ;;
    --processes) PROCESSES="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
case "$SHAPE" in smoke|ramp|soak|spike|capacity) ;; *) echo "unknown shape: $SHAPE" >&2; exit 2 ;; esac
case "$BACKEND" in sqlite|postgres) ;; *) echo "unknown backend: $BACKEND" >&2; exit 2 ;; esac
OUT="${OUT:-$ROOT/loadtest/results/$SHAPE-$BACKEND-$(date -u +%Y%m%dT%H%M%SZ)}"

# Locust and matplotlib, every dependency pinned, in a venv named after the requirements.
REQUIREMENTS="$ROOT/loadtest/requirements.txt"
VENV="${TOOLS_DIR:-/var/tmp/aimpact-tools}/loadtest-$(sha256sum "$REQUIREMENTS" | cut -c1-12)"
if [ ! -x "$VENV/bin/locust" ]; then
  step "Installing Locust (PyPI, pinned in loadtest/requirements.txt, once)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet -r "$REQUIREMENTS"
fi
[ "$BACKEND" = postgres ] && apt_install postgresql haproxy redis-server redis-sentinel

# The server and the data generator (idp/examples/loadtest_data.rs).
if [ "$PROFILE" = release ]; then
  step "Building the server and the data generator (release)"
  cargo build --release --quiet -p idp --bin idp --example loadtest_data
  IDP_BIN="$CARGO_TARGET_DIR/release/idp" DATAGEN="$CARGO_TARGET_DIR/release/examples/loadtest_data"
else
  IDP_BIN="${IDP_BIN:-$CARGO_TARGET_DIR/debug/idp}" DATAGEN="${DATAGEN:-$CARGO_TARGET_DIR/debug/examples/loadtest_data}"
  if [ ! -x "$IDP_BIN" ] || [ ! -x "$DATAGEN" ]; then
    step "Building the server and the data generator"
    cargo test -p idp -p e2e --no-run --quiet
  fi
fi

run() {  # run SHAPE OUT [run.py options]: one Locust run and its verdict
  local shape="$1" out="$2"; shift 2
  python3 "$ROOT/loadtest/run.py" "$shape" "$out" --idp "$IDP_BIN" --datagen "$DATAGEN" \
    --locust "$VENV/bin/locust" --backend "$BACKEND" --replicas "$REPLICAS" --processes "$PROCESSES" \
    --data "$DATA" "$@"
  "$VENV/bin/python" "$ROOT/loadtest/report.py" "$out"
}

step "Load test: $SHAPE on $BACKEND ($PROFILE build), report in $OUT"
if [ "$SHAPE" = capacity ]; then
  status=0
  for operation in LoginOnly RefreshOnly ClientCredentialsOnly IntrospectOnly; do
    step "Capacity: $operation"
    run capacity "$OUT/$operation" --classes "$operation" || status=1
  done
  exit $status
fi
run "$SHAPE" "$OUT"
