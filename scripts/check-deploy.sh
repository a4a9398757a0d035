#!/usr/bin/env bash
# Static checks of deploy/: Prometheus rules (syntax and unit tests for every alert), the
# Alertmanager routing, Grafana dashboards up to date with their generator, well-formed JSON,
# and the Kubernetes manifests (schema-validated with kubernetes-validate from PyPI, pinned,
# then deploy/k8s/check.py for what a schema cannot see).
source "$(dirname "$0")/lib.sh"
cd "$ROOT/deploy"

KUBERNETES_VERSION="1.31"
VENV="$(pip_tool kubernetes-validate 1.37.0 kubernetes-validate)"

step "Checking the Kubernetes manifests (Kubernetes $KUBERNETES_VERSION schemas, strict)"
# kubernetes-validate knows the plain kinds; custom resources (cert-manager, CloudNativePG,
# Prometheus Operator) are checked against the operators' own CRDs in deploy/crds, strictly.
"$VENV/bin/kubernetes-validate" --strict --quiet --no-warn -k "$KUBERNETES_VERSION" k8s/*.yaml k8s/cluster/*.yaml backup/*.yaml postgres/*.yaml postgres/recovery/*.yaml
"$VENV/bin/python" check_crds.py k8s/*.yaml k8s/cluster/*.yaml backup/*.yaml postgres/*.yaml postgres/recovery/*.yaml
# The check must catch what it exists for: a misspelt field of a custom resource.
typo="$(mktemp --suffix=.yaml)"
sed 's/dnsNames:/dnsName:/' k8s/certificate.yaml > "$typo"
if "$VENV/bin/python" check_crds.py "$typo" 2>/dev/null; then
  rm -f "$typo"
  echo "check_crds.py accepted a Certificate with a misspelt field" >&2
  exit 1
fi
rm -f "$typo"
"$VENV/bin/python" k8s/check.py

step "Checking what each overlay renders (kubectl kustomize), strictly"
command -v kubectl >/dev/null || apt_install kubernetes-client
for overlay in overlays/*/; do
  rendered="$(mktemp --suffix=.yaml)"
  kubectl kustomize "$overlay" > "$rendered"
  "$VENV/bin/kubernetes-validate" --strict --quiet --no-warn -k "$KUBERNETES_VERSION" "$rendered"
  "$VENV/bin/python" check_crds.py "$rendered"
  if grep -E '^\s+image: [^ ]+:latest\b' "$rendered"; then
    echo "$overlay renders an image tagged latest" >&2; exit 1
  fi
  rm -f "$rendered"
  echo "$overlay: valid"
done

step "Checking the Redis HA configuration (haproxy -c, sh -n on the node scripts)"
apt_install haproxy
scratch="$(mktemp -d)"
"$VENV/bin/python" - "$scratch" <<'PY'
import pathlib, sys, yaml
out = pathlib.Path(sys.argv[1])
for doc in yaml.safe_load_all(open("k8s/redis.yaml")):
    if doc["kind"] == "ConfigMap":
        for name, text in doc["data"].items():
            (out / name).write_text(text.replace("/tls/ca.crt", str(out / "ca.crt")))
PY
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=check -days 1 \
  -keyout "$scratch/ca.key" -out "$scratch/ca.crt" 2>/dev/null
REDIS_PASSWORD=check POD_NAMESPACE=idp haproxy -c -q -f "$scratch/haproxy.cfg"
for script in "$scratch"/*.sh; do sh -n "$script"; done
rm -rf "$scratch"

step "Checking Prometheus alert rules (promtool)"
promtool check rules prometheus/alerts.yml
(cd prometheus && promtool test rules tests.yml)
# Every alert names a runbook that exists.
grep -o 'docs/runbooks/[a-z0-9-]*\.md' prometheus/alerts.yml | sort -u | while read -r runbook; do
  [ -f "$ROOT/$runbook" ] || { echo "alerts.yml names $runbook, which does not exist" >&2; exit 1; }
done
[ "$(grep -c 'runbook_url:' prometheus/alerts.yml)" -eq "$(grep -c -- '- alert:' prometheus/alerts.yml)" ] \
  || { echo "every alert in alerts.yml needs a runbook_url" >&2; exit 1; }
step "Checking the Alertmanager routing (amtool)"
amtool check-config prometheus/alertmanager.yml

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
