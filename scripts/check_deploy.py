"""Validates deploy/ as a cluster would see it (scripts/check-deploy runs this).

It renders the kustomization with `kubectl kustomize deploy/`, then checks:

- every SpinApp against the openAPIV3Schema of spin-operator v0.6.1's SpinApp CRD (vendored
  with its licence in tests/deploy), with `check-jsonschema`. The schema is made strict first
  (no property it does not name), because the API server would silently drop an unknown field of
  a SpinApp;
- every built-in object (and the Secret templates of secrets.example.yaml) against Kubernetes'
  own schemas, with `kubernetes-validate --strict`;
- that both checks can fail: a copy of each kind of object with one misspelled field must be
  refused, or this script fails.

Usage: check_deploy.py ROOT VENV  (the repository root and the validators' virtual environment)
"""

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

KUBERNETES_VERSION = "1.32.0"


def strict(schema):
    """The schema with `additionalProperties: false` on every object that names its properties."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def spinapp_schema(root):
    crd_path = os.path.join(root, "tests", "deploy", "core.spinkube.dev_spinapps.yaml")
    with open(crd_path) as file:
        crd = yaml.safe_load(file)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = strict(version["schema"]["openAPIV3Schema"])
    # apiVersion, kind and metadata are the API server's to check; metadata is open here.
    schema["properties"]["metadata"] = {"type": "object"}
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    return schema


def run(command):
    return subprocess.run(command, capture_output=True, text=True)


def kubectl(venv):
    found = shutil.which("kubectl") or os.path.join(venv, "bin", "kubectl")
    if not os.path.exists(found):
        sys.exit(f"kubectl not found (scripts/setup.sh's ensure_deploy_tools installs it)")
    return found


def check_spinapps(venv, schema_file, documents, work, label):
    files = []
    for index, document in enumerate(documents):
        path = os.path.join(work, f"{label}-spinapp-{index}.json")
        with open(path, "w") as file:
            json.dump(document, file)
        files.append(path)
    return run([os.path.join(venv, "bin", "check-jsonschema"), "--schemafile", schema_file, *files])


def check_builtins(venv, documents, work, label):
    path = os.path.join(work, f"{label}-builtins.yaml")
    with open(path, "w") as file:
        yaml.safe_dump_all(documents, file)
    return run([os.path.join(venv, "bin", "kubernetes-validate"), "--strict",
                "--kubernetes-version", KUBERNETES_VERSION, path])


def misspelled(document):
    """A copy of the object with one field of its spec renamed, as a typo would."""
    broken = copy.deepcopy(document)
    spec = broken["spec"]
    first = sorted(spec)[0]
    spec[first + "x"] = spec.pop(first)
    return broken


def main():
    root, venv = sys.argv[1], sys.argv[2]
    rendered = run([kubectl(venv), "kustomize", os.path.join(root, "deploy")])
    if rendered.returncode != 0:
        sys.exit(f"kubectl kustomize deploy/ failed:\n{rendered.stderr}")
    documents = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    spinapps = [d for d in documents if d["kind"] == "SpinApp"]
    builtins = [d for d in documents if d["kind"] != "SpinApp"]
    with open(os.path.join(root, "deploy", "secrets.example.yaml")) as file:
        secrets = [d for d in yaml.safe_load_all(file) if d]
    kinds = sorted({d["kind"] for d in documents})
    print(f"rendered deploy/: {len(documents)} objects ({', '.join(kinds)})")
    if len(spinapps) != 2:
        sys.exit(f"expected the two SpinApps (HTTP and Redis-triggered), found {len(spinapps)}")

    failures = []
    with tempfile.TemporaryDirectory() as work:
        schema_file = os.path.join(work, "spinapp.schema.json")
        with open(schema_file, "w") as file:
            json.dump(spinapp_schema(root), file)

        result = check_spinapps(venv, schema_file, spinapps, work, "real")
        print(f"SpinApps against the v0.6.1 CRD: {'ok' if result.returncode == 0 else 'FAILED'}")
        if result.returncode != 0:
            failures.append(result.stdout + result.stderr)
        result = check_builtins(venv, builtins + secrets, work, "real")
        print(f"{len(builtins)} built-in objects and {len(secrets)} Secret templates against "
              f"Kubernetes {KUBERNETES_VERSION}: {'ok' if result.returncode == 0 else 'FAILED'}")
        if result.returncode != 0:
            failures.append(result.stdout + result.stderr)

        # The validators must refuse a typo, or passing above proves nothing.
        for spinapp in spinapps:
            if check_spinapps(venv, schema_file, [misspelled(spinapp)], work, "broken").returncode == 0:
                failures.append(f"the SpinApp check accepted a misspelled field in {spinapp['metadata']['name']}")
        for kind in sorted({d["kind"] for d in builtins if isinstance(d.get("spec"), dict)}):
            document = next(d for d in builtins if d["kind"] == kind and isinstance(d.get("spec"), dict))
            if check_builtins(venv, [misspelled(document)], work, "broken").returncode == 0:
                failures.append(f"the built-in check accepted a misspelled field in a {kind}")
        print("a misspelled field in each kind is refused: "
              + ("ok" if not any("accepted" in f for f in failures) else "FAILED"))

    if failures:
        sys.exit("\n".join(failures))


if __name__ == "__main__":
    main()
