"""Invariants of the Kubernetes manifests that a schema cannot see (scripts/check-deploy.sh
runs this after kubernetes-validate). Usage: python3 deploy/k8s/check.py (PyYAML needed:
kubernetes-validate brings it)."""
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
errors = []


def fail(message):
    errors.append(message)


CLUSTER = K8S / "cluster"
APP_FILES = sorted(K8S.glob("*.yaml")) + [ROOT / "deploy" / "backup" / "cronjob.yaml"]


def documents(paths):
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                yield path.name, doc


app_docs = list(documents(APP_FILES))
docs = app_docs + list(documents(sorted(CLUSTER.glob("*.yaml"))))
by_kind = {}
for name, doc in docs:
    by_kind.setdefault(doc["kind"], []).append(doc)

# Settings the server knows (docs/configuration.md is generated from the code and checked).
settings = set(re.findall(r"`(IDP_[A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text()))
if len(settings) < 20:
    fail("could not read the settings from docs/configuration.md")


def known(variable):
    return variable in settings or (variable.endswith("_FILE") and variable[: -len("_FILE")] in settings)


for config in by_kind["ConfigMap"]:
    if config["metadata"]["name"] != "idp-config":
        continue
    for key in config["data"]:
        if not known(key):
            fail(f"configmap.yaml: {key} is not a setting of idp (docs/configuration.md)")
for secret in by_kind["Secret"]:
    for key in secret.get("stringData", {}):
        if key.startswith("IDP_") and not known(key):
            fail(f"{secret['metadata']['name']}: {key} is not a setting of idp")

# Routes the server serves (the probes and the ingress must use real ones).
source = "\n".join(p.read_text() for p in (ROOT / "idp" / "src").rglob("*.rs"))
routes = set(re.findall(r'\.route\("([^"]+)"', source)) | set(re.findall(r'web::resource\("([^"]+)"', source))


def pod_specs():
    for kind in ("Deployment", "StatefulSet", "Job"):
        for doc in by_kind.get(kind, []):
            yield doc["metadata"]["name"], doc["spec"]["template"]
    for doc in by_kind.get("CronJob", []):
        yield doc["metadata"]["name"], doc["spec"]["jobTemplate"]["spec"]["template"]


for name, template in pod_specs():
    spec = template["spec"]
    pod_security = spec.get("securityContext", {})
    if not pod_security.get("runAsNonRoot") or pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(f"{name}: pods must run as non-root with the RuntimeDefault seccomp profile")
    if spec.get("automountServiceAccountToken", True):
        fail(f"{name}: no service-account token is needed; set automountServiceAccountToken: false")
    for container in spec["containers"]:
        security = container.get("securityContext", {})
        if security.get("allowPrivilegeEscalation") is not False or security.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(f"{name}/{container['name']}: no privilege escalation, all capabilities dropped")
        resources = container.get("resources", {})
        if "requests" not in resources or "memory" not in resources.get("limits", {}):
            fail(f"{name}/{container['name']}: resource requests and a memory limit are required")
        if container.get("image", "").startswith("aimpact/idp"):
            for env in container.get("env", []):
                if env["name"].startswith("IDP_") and not known(env["name"]):
                    fail(f"{name}: {env['name']} is not a setting of idp")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = container.get(probe, {}).get("httpGet", {}).get("path")
            if path and path not in routes:
                fail(f"{name}: {probe} uses {path}, which idp does not serve")

# The server: graceful shutdown fits in the grace period; labels tie the pieces together.
(deployment,) = [d for d in by_kind["Deployment"] if d["metadata"]["name"] == "idp"]
pod = deployment["spec"]["template"]
labels = pod["metadata"]["labels"]
(config,) = [c for c in by_kind["ConfigMap"] if c["metadata"]["name"] == "idp-config"]
container = pod["spec"]["containers"][0]
pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
drain = int(config["data"]["IDP_SHUTDOWN_GRACE_S"])
if pod["spec"]["terminationGracePeriodSeconds"] <= pre_stop + drain:
    fail("deployment.yaml: terminationGracePeriodSeconds must exceed the preStop pause plus IDP_SHUTDOWN_GRACE_S")
if container["readinessProbe"]["httpGet"]["path"] != "/readyz" or container["livenessProbe"]["httpGet"]["path"] != "/healthz":
    fail("deployment.yaml: readiness checks dependencies (/readyz); liveness only the process (/healthz)")
if deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] != 0:
    fail("deployment.yaml: a rollout must not drop below the current capacity")


def selects(selector, pod_labels):
    return all(pod_labels.get(k) == v for k, v in selector.items())


for service in by_kind["Service"]:
    if service["metadata"]["name"] == "idp" and not selects(service["spec"]["selector"], labels):
        fail("service.yaml: the selector does not match the server's pods")
# Every long-running workload has probes and a PodDisruptionBudget that selects its pods; no
# budget selects nothing.
workloads = by_kind["Deployment"] + by_kind.get("StatefulSet", [])
budgets = [pdb["spec"]["selector"]["matchLabels"] for pdb in by_kind["PodDisruptionBudget"]]
for workload in workloads:
    name, template = workload["metadata"]["name"], workload["spec"]["template"]
    if not any(selects(budget, template["metadata"]["labels"]) for budget in budgets):
        fail(f"{name}: no PodDisruptionBudget selects its pods")
    for container in template["spec"]["containers"]:
        if not ("readinessProbe" in container and "livenessProbe" in container):
            fail(f"{name}/{container['name']}: readiness and liveness probes are required")
for budget in budgets:
    if not any(selects(budget, w["spec"]["template"]["metadata"]["labels"]) for w in workloads):
        fail(f"a PodDisruptionBudget selects no workload: {budget}")
if not any(selects(budget, labels) for budget in budgets):
    fail("pdb.yaml: no PodDisruptionBudget for the server's pods")

# No floating image: every image names an exact version (the release pipeline adds the
# digest, `kustomize edit set image`), never `latest` or a bare major version.
def images(spec):
    return [c["image"] for c in spec.get("containers", []) + spec.get("initContainers", [])]


for name, template in pod_specs():
    for image in images(template["spec"]):
        tag = image.rpartition("@")[0] or image
        version = tag.rpartition(":")[2] if ":" in tag.rpartition("/")[2] else ""
        if "@sha256:" not in image and (version in ("", "latest") or not re.match(r"^v?\d+\.\d+\.\d+", version)):
            fail(f"{name}: image {image} must name an exact version (x.y.z) or a digest")
for pg_file in sorted((ROOT / "deploy" / "postgres").glob("*.yaml")):
    for match in re.findall(r"imageName:\s*(\S+)", pg_file.read_text()):
        if ":" not in match or match.endswith(":latest"):
            fail(f"deploy/postgres/{pg_file.name}: image {match} must be pinned")
kustomization_images = yaml.safe_load((K8S / "kustomization.yaml").read_text()).get("images", [])
workspace_version = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
for image in kustomization_images:
    if image["name"] == "aimpact/idp" and image.get("newTag") != workspace_version:
        fail(f"kustomization.yaml: aimpact/idp is {image.get('newTag')}, the workspace is {workspace_version}")
for image in kustomization_images:
    if image.get("newTag", "") == "latest" or not (image.get("digest") or image.get("newTag")):
        fail(f"kustomization.yaml: image {image['name']} must be set to a release, not latest")
(hpa,) = by_kind["HorizontalPodAutoscaler"]
if hpa["spec"]["scaleTargetRef"]["name"] != deployment["metadata"]["name"]:
    fail("hpa.yaml: scales something other than the server")
if hpa["spec"]["minReplicas"] < 2:
    fail("hpa.yaml: at least two replicas, so that one can be disrupted")
if {m["resource"]["name"] for m in hpa["spec"]["metrics"]} != {"cpu", "memory"}:
    fail("hpa.yaml: scale on CPU and memory")

# The public ingress routes only real, public paths: never /metrics or the probes.
private = {"/metrics", "/healthz", "/readyz"}
for ingress in by_kind["Ingress"]:
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            p = path["path"]
            if p in private or p == "/":
                fail(f"ingress {ingress['metadata']['name']}: {p} must not be public")
            if path["pathType"] == "Exact" and p not in routes:
                fail(f"ingress {ingress['metadata']['name']}: {p} is not a route of idp")
            if path["pathType"] == "Prefix" and not any(r.startswith(p.rstrip("/")) for r in routes | {"/.well-known/"}):
                fail(f"ingress {ingress['metadata']['name']}: no route of idp under {p}")
    annotations = ingress["metadata"]["annotations"]
    if annotations.get("nginx.ingress.kubernetes.io/enable-modsecurity") != "true":
        fail(f"ingress {ingress['metadata']['name']}: the WAF (ModSecurity) must be on")
    if not ingress["spec"].get("tls"):
        fail(f"ingress {ingress['metadata']['name']}: TLS is required")

# Default deny for the namespace.
policies = {p["metadata"]["name"]: p for p in by_kind["NetworkPolicy"]}
deny = policies.get("default-deny", {}).get("spec", {})
if deny.get("podSelector") != {} or set(deny.get("policyTypes", [])) != {"Ingress", "Egress"}:
    fail("networkpolicy.yaml: a default-deny policy for ingress and egress is required")

# An HTTP-01 issuer needs its solver pods reachable from the ingress controller through the
# default deny (cert-manager labels them acme.cert-manager.io/http01-solver=true, port 8089).
http01 = any(
    "http01" in solver
    for issuer in by_kind.get("ClusterIssuer", []) + by_kind.get("Issuer", [])
    for solver in issuer["spec"].get("acme", {}).get("solvers", [])
)
solver_open = any(
    p["spec"]["podSelector"].get("matchLabels", {}).get("acme.cert-manager.io/http01-solver") == "true"
    and any(
        "ingress-nginx" in {s.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") for s in rule.get("from", [])}
        and 8089 in {port["port"] for port in rule.get("ports", [])}
        for rule in p["spec"].get("ingress", [])
    )
    for p in by_kind["NetworkPolicy"]
)
if http01 and not solver_open:
    fail("networkpolicy.yaml: the ACME HTTP-01 solver pods (port 8089) must be reachable from the ingress controller")

# Runbooks select pods by labels the manifests really set.
all_labels = set()
for _, doc in docs:
    for found in (doc.get("metadata", {}).get("labels", {}), doc.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})):
        all_labels |= {f"{k}={v}" for k, v in (found or {}).items()}
for runbook in sorted((ROOT / "docs" / "runbooks").glob("*.md")):
    for selector in re.findall(r"kubectl[^`]*?\s-l\s+([^\s`]+)", runbook.read_text()):
        for term in selector.split(","):
            if term not in all_labels:
                fail(f"docs/runbooks/{runbook.name}: kubectl -l {term} matches no label of deploy/")

# Everything in the directory is applied by the kustomization, or says why not.
kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
listed = set(kustomization["resources"])
for path in K8S.glob("*.yaml"):
    if path.name not in listed | {"kustomization.yaml", "secret.example.yaml", "ingress-controller-config.yaml"}:
        fail(f"kustomization.yaml does not include {path.name}")
for resource in listed:
    if not (K8S / resource).exists():
        fail(f"kustomization.yaml lists {resource}, which does not exist")

cluster_kustomization = yaml.safe_load((CLUSTER / "kustomization.yaml").read_text())
for path in CLUSTER.glob("*.yaml"):
    if path.name != "kustomization.yaml" and path.name not in cluster_kustomization["resources"]:
        fail(f"cluster/kustomization.yaml does not include {path.name}")

# The deployers' Role can apply all of deploy/k8s: every kind in it, created and patched in the
# namespace (what it cannot, being cluster-scoped or RBAC, is in deploy/k8s/cluster).
def plural(kind):
    kind = kind.lower()
    if kind.endswith("y"):
        return kind[:-1] + "ies"
    return kind + ("es" if kind.endswith("s") else "s")


(deployer,) = [r for r in by_kind["Role"] if r["metadata"]["name"] == "idp-deployer"]
granted = set()
for rule in deployer["rules"]:
    if {"create", "patch"} <= set(rule["verbs"]):
        granted |= {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
for name, doc in app_docs:
    if name not in listed and name != "cronjob.yaml":
        continue  # not applied by the kustomization (the example Secret, the controller's settings)
    if doc["kind"] in ("Namespace", "ClusterIssuer", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
        fail(f"{name}: {doc['kind']} belongs in deploy/k8s/cluster (a namespaced deployer cannot apply it)")
        continue
    group = doc["apiVersion"].rpartition("/")[0]
    if (group, plural(doc["kind"])) not in granted:
        fail(f"cluster/rbac.yaml: idp-deployer cannot create and patch {plural(doc['kind'])} ({group or 'core'}), which {name} applies")

# The PostgreSQL connection budget (deploy/postgres): at the HPA maximum every replica's pool
# (IDP_DATABASE_MAX_CONNECTIONS, plus 2 for the rotation batcher) fits the pooler, in session
# mode (the batcher's prepared statements), and the pooler's server connections fit
# max_connections with room for the operator, replication, migrations and backups.
POSTGRES = ROOT / "deploy" / "postgres"
pg_docs = list(documents(sorted(POSTGRES.glob("*.yaml"))))
(cluster,) = [d for _, d in pg_docs if d["kind"] == "Cluster"]
(pooler,) = [d for _, d in pg_docs if d["kind"] == "Pooler"]
idp_config = next(c for c in by_kind["ConfigMap"] if c["metadata"]["name"] == "idp-config")["data"]
budget = hpa["spec"]["maxReplicas"] * (int(idp_config["IDP_DATABASE_MAX_CONNECTIONS"]) + 2)
bouncer = pooler["spec"]["pgbouncer"]
pool_size = int(bouncer["parameters"]["default_pool_size"])
max_connections = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
(app_role,) = [r for r in cluster["spec"]["managed"]["roles"] if r["name"] == "idp_app"]
if bouncer.get("poolMode") != "session":
    fail("deploy/postgres/pooler.yaml: the rotation batcher's prepared statements need poolMode: session")
if not budget <= pool_size <= int(bouncer["parameters"]["max_client_conn"]):
    fail(f"deploy/postgres/pooler.yaml: {budget} connections at the HPA maximum must fit default_pool_size {pool_size} and max_client_conn")
if pool_size + 20 > max_connections:
    fail(f"deploy/postgres/cluster.yaml: max_connections {max_connections} leaves less than 20 beyond the pooler's {pool_size}")
if app_role.get("connectionLimit", -1) != -1 and app_role["connectionLimit"] < budget:
    fail(f"deploy/postgres/cluster.yaml: idp_app's connectionLimit is under the budget of {budget}")
server_major = int(re.search(r":(\d+)", cluster["spec"]["imageName"].rpartition("/")[2]).group(1))
client = re.search(r"postgresql-client-(\d+)", (ROOT / "Dockerfile").read_text())
if not client or int(client.group(1)) < server_major:
    fail(f"Dockerfile: the image's pg_dump must be at least the server's major version {server_major}")
if cluster["spec"]["instances"] < 3 or cluster["spec"].get("minSyncReplicas", 0) < 1:
    fail("deploy/postgres/cluster.yaml: three instances and a synchronous standby (no committed write lost in a failover)")

# Prometheus finds the server's pods by their labels (Debian's promtool lacks Kubernetes
# discovery, so the scrape configuration is checked here).
scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "scrape.yml").read_text())
for rule_file in scrape["rule_files"]:
    if not (ROOT / "deploy" / "prometheus" / rule_file).exists():
        fail(f"scrape.yml: rule file {rule_file} does not exist")
(idp_job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "idp"]
keep = idp_job["relabel_configs"][0]
wanted = [labels.get(s.replace("__meta_kubernetes_pod_label_", "").replace("app_kubernetes_io_", "app.kubernetes.io/"))
          for s in keep["source_labels"]]
if ";".join(map(str, wanted)) != keep["regex"]:
    fail("scrape.yml: the idp job does not keep the server's pods (labels differ from deployment.yaml)")

# /metrics has a port of its own: the config, the container's metrics port, the scrape job and
# the network policy agree on it, and the public server port is not the metrics port.
config = next(c for c in by_kind["ConfigMap"] if c["metadata"]["name"] == "idp-config")["data"]
metrics_port = int(config.get("IDP_METRICS_LISTEN", ":0").rsplit(":", 1)[1])
server = next(d for d in by_kind["Deployment"] if d["metadata"]["name"] == "idp")["spec"]["template"]
ports = {p["name"]: p["containerPort"] for c in server["spec"]["containers"] for p in c.get("ports", [])}
if ports.get("metrics") != metrics_port or metrics_port == ports.get("http"):
    fail(f"deployment.yaml: the metrics port {ports.get('metrics')} is not IDP_METRICS_LISTEN's {metrics_port}")
if server["metadata"]["annotations"].get("prometheus.io/port") != str(metrics_port):
    fail("deployment.yaml: the prometheus.io/port annotation is not the metrics port")
port_keep = [r for r in idp_job["relabel_configs"] if "__meta_kubernetes_pod_container_port_name" in r.get("source_labels", [])]
if [r["regex"] for r in port_keep] != ["metrics"]:
    fail("scrape.yml: the idp job must scrape the container port named metrics")
for policy in by_kind["NetworkPolicy"]:
    for rule in policy["spec"].get("ingress", []):
        sources = {s.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") for s in rule.get("from", [])}
        opened = {p["port"] for p in rule.get("ports", [])}
        if "ingress-nginx" in sources and metrics_port in opened:
            fail(f"networkpolicy.yaml: {policy['metadata']['name']} opens the metrics port to the ingress controller")
        if "monitoring" in sources and opened - {metrics_port}:
            fail(f"networkpolicy.yaml: {policy['metadata']['name']} opens more than the metrics port to monitoring")

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"deploy/k8s: {len(docs)} resources, invariants hold")
