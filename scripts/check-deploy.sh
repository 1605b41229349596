#!/usr/bin/env bash
# Checks the deployment files without a Docker engine or a cluster:
#   - every YAML file under deploy/ parses, and the Grafana dashboard is JSON;
#   - the Kubernetes manifests validate against the Kubernetes 1.29 schemas
#     (kubernetes-validate from PyPI, strict: unknown fields fail);
#   - the Prometheus configuration and alert rules pass promtool, and the rules' unit
#     tests (deploy/monitoring/rules/*.test.yml) pass `promtool test rules`.
# That the rules and the dashboard name only metrics /metrics exposes is a Rust test
# (tests/tests/operations.rs). Idempotent; the tools go into .local/tools (a Python venv,
# and promtool unpacked from Debian's prometheus package without installing it, so no
# Prometheus service is ever started here).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source deploy/local/lib.sh

TOOLS="$STATE/tools"
VENV="$TOOLS/venv"
KUBERNETES_VERSION=1.29.0
mkdir -p "$TOOLS"

if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
    command -v python3 >/dev/null || apt_install python3
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; rm -rf "$VENV"; python3 -m venv "$VENV"; }
    say "pip install kubernetes-validate, PyYAML (into $VENV)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        'kubernetes-validate==1.37.0' 'PyYAML==6.0.2'
fi

PROMTOOL="$TOOLS/promtool"
if [ ! -x "$PROMTOOL" ]; then
    say "unpacking promtool from Debian's prometheus package"
    work=$(mktemp -d)
    ( cd "$work" && apt-get download prometheus >/dev/null 2>&1 ) || {
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        ( cd "$work" && apt-get download prometheus >/dev/null 2>&1 )
    }
    dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
    install -m 0755 "$work/root/usr/bin/promtool" "$PROMTOOL"
    rm -rf "$work"
fi

echo "== YAML and JSON under deploy/ parse"
mapfile -t yaml_files < <(find deploy -name '*.yml' -o -name '*.yaml' | sort)
"$VENV/bin/python" - "${yaml_files[@]}" <<'PY'
import json, sys, yaml
documents = 0
for path in sys.argv[1:]:
    with open(path) as f:
        documents += sum(1 for d in yaml.safe_load_all(f) if d is not None)
with open("deploy/monitoring/grafana/dashboards/coinfold.json") as f:
    panels = len(json.load(f)["panels"])
print(f"{len(sys.argv) - 1} YAML files, {documents} documents; dashboard: {panels} panels")
PY

echo "== Kubernetes manifests against the $KUBERNETES_VERSION schemas"
mapfile -t manifests < <(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
"$VENV/bin/kubernetes-validate" --kubernetes-version "$KUBERNETES_VERSION" --strict --quiet "${manifests[@]}"
echo "${#manifests[@]} manifest files valid"

echo "== promtool"
"$PROMTOOL" check rules deploy/monitoring/rules/coinfold.rules.yml
"$PROMTOOL" test rules deploy/monitoring/rules/coinfold.rules.test.yml
# The configuration names its rule files by their path in the container: check a copy
# that names them here.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s#/etc/prometheus/rules/#$PWD/deploy/monitoring/rules/#" deploy/monitoring/prometheus.yml > "$work/prometheus.yml"
"$PROMTOOL" check config "$work/prometheus.yml"
