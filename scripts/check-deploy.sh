#!/usr/bin/env bash
# Static checks of deploy/: Prometheus rules (syntax and unit tests for every alert),
# Grafana dashboards up to date with their generator, and well-formed JSON.
source "$(dirname "$0")/lib.sh"
cd "$ROOT/deploy"

step "Checking Prometheus alert rules (promtool)"
promtool check rules prometheus/alerts.yml
(cd prometheus && promtool test rules tests.yml)

step "Checking Grafana dashboards and logging configuration"
before="$(cat grafana/dashboards/*.json | sha256sum)"
python3 grafana/generate.py
after="$(cat grafana/dashboards/*.json | sha256sum)"
if [ "$before" != "$after" ]; then
  echo "deploy/grafana/dashboards is out of date with generate.py (regenerated; commit the result)" >&2
  exit 1
fi
for f in grafana/dashboards/*.json logging/*.json; do python3 -m json.tool "$f" >/dev/null; done
python3 - <<'PY'
import json
for line in open("logging/kibana-saved-searches.ndjson"):
    json.loads(json.loads(line)["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
PY
echo "deploy checks passed"
