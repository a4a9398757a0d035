"""Validates deploy/'s custom resources (cert-manager, CloudNativePG, Prometheus Operator)
against the operators' real CustomResourceDefinitions in deploy/crds/, strictly: a field the
schema does not know is an error, as the API server's strict field validation makes it (a
typo such as `dnsName` for `dnsNames` must not pass). A custom kind without a CRD here is an
error too. Plain Kubernetes kinds are kubernetes-validate's (scripts/check-deploy.sh).

Usage: python check_crds.py MANIFEST...   (exit 1 naming every problem)
"""

import copy
import pathlib
import sys

import jsonschema
import yaml

HERE = pathlib.Path(__file__).resolve().parent
# Kinds that are not API objects, or are covered by kubernetes-validate.
BUILT_IN_GROUPS = {
    "", "apps", "batch", "autoscaling", "policy", "networking.k8s.io",
    "rbac.authorization.k8s.io", "kustomize.config.k8s.io",
}


def strict(schema):
    """The schema with unknown fields refused wherever it lists the known ones."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def load_crds():
    """(group, version, kind) -> the strict schema of that served version."""
    schemas = {}
    for path in sorted((HERE / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if not version.get("served", False):
                    continue
                schema = strict(version["schema"]["openAPIV3Schema"])
                # The API server checks metadata itself; the CRD leaves it open.
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                schemas[(spec["group"], version["name"], spec["names"]["kind"])] = schema
    return schemas


def main(paths):
    schemas = load_crds()
    problems = []
    checked = 0
    for path in paths:
        for doc in yaml.safe_load_all(pathlib.Path(path).read_text()):
            if not doc:
                continue
            group, _, version = doc.get("apiVersion", "").rpartition("/")
            if group in BUILT_IN_GROUPS:
                continue
            kind = doc.get("kind")
            name = doc.get("metadata", {}).get("name", "?")
            schema = schemas.get((group, version, kind))
            if schema is None:
                problems.append(f"{path}: {kind} {name}: no CustomResourceDefinition for {group}/{version} {kind} in deploy/crds")
                continue
            validator = jsonschema.Draft7Validator(schema)
            for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
                where = ".".join(str(p) for p in error.absolute_path) or "(top)"
                problems.append(f"{path}: {kind} {name}: {where}: {error.message}")
            checked += 1
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"custom resources: {checked} valid against deploy/crds (strict)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
