"""deploy/knative: the original tutorial's architecture as kustomize manifests. Rendered by
a real `kubectl kustomize`; core kinds checked against the Kubernetes schemas, Knative
Services and the ApiServerSource against their CRDs' models. The GitHubSource
(eventing-github) has no schema available offline: its fields are checked by hand below."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dora_cloudevents.config import load_settings
from dora_cloudevents.transformers import builtin_transformers
from tests.deploy.manifests import Manifest, containers, documents, env_of, here, run, tool
from tests.deploy.manifests import validate as validate_manifest

NAMESPACE = "dora-cloudevents"
INGEST_URL = f"http://dora-ingest.{NAMESPACE}.svc.cluster.local"


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    return documents(run(tool("kubectl"), "kustomize", str(here("deploy", "knative"))))


def find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    [found] = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def test_every_manifest_validates(manifests: list[Manifest]) -> None:
    checked = {(m["kind"], m["metadata"]["name"]): validate_manifest(m) for m in manifests}
    assert {key for key, how in checked.items() if how == "unchecked"} == {
        ("GitHubSource", "dora-github")}
    assert {key for key, how in checked.items() if how == "crd"} == {
        ("Service", "dora-ingest"), ("Service", "dora-transformers"), ("Service", "dora-api"),
        ("ApiServerSource", "dora-deployments")}


def test_the_tutorials_architecture(manifests: list[Manifest]) -> None:
    kinds = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    assert ("Namespace", NAMESPACE) in kinds
    ksvcs = {m["metadata"]["name"]: containers(m)[0]["args"] for m in manifests
             if m["apiVersion"] == "serving.knative.dev/v1"}
    assert ksvcs == {"dora-ingest": ["serve", "--components", "ingest"],
                     "dora-transformers": ["serve", "--components", "transform"],
                     "dora-api": ["serve", "--components", "api,ui"]}
    crons = {m["metadata"]["name"]: containers(m)[0]["args"] for m in manifests
             if m["kind"] == "CronJob"}
    assert crons == {"dora-router": ["route", "--once"],
                     "dora-projector": ["project", "--once"]}
    assert containers(find(manifests, "Job", "dora-migrate"))[0]["args"][:2] == ["db", "upgrade"]
    assert ("StatefulSet", "dora-postgresql") in kinds
    for manifest in manifests:
        if manifest["kind"] in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
            continue
        expected = "tekton-pipelines" if manifest["metadata"]["name"] == "config-events" \
            else NAMESPACE
        assert manifest["metadata"]["namespace"] == expected, manifest["metadata"]


def test_only_the_job_migrates(manifests: list[Manifest]) -> None:
    for manifest in manifests:
        if manifest["kind"] in {"Service", "CronJob"} and "template" in str(manifest["spec"]):
            for container in containers(manifest):
                if container["name"] == "dora-ce":
                    assert env_of(container)["DORA_MIGRATE"] == "false"


def test_sources_send_to_the_ingest_service(manifests: list[Manifest]) -> None:
    ingest_ref = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                  "name": "dora-ingest"}
    source = find(manifests, "ApiServerSource", "dora-deployments")["spec"]
    assert source["mode"] == "Resource"
    assert source["resources"] == [{"apiVersion": "apps/v1", "kind": "Deployment"}]
    assert source["sink"]["ref"] == ingest_ref

    github = find(manifests, "GitHubSource", "dora-github")
    assert github["apiVersion"] == "sources.knative.dev/v1alpha1"
    spec = github["spec"]
    assert set(spec) == {"eventTypes", "ownerAndRepository", "accessToken", "secretToken",
                         "sink"}
    assert "/" in spec["ownerAndRepository"] and "push" in spec["eventTypes"]
    assert spec["sink"]["ref"] == ingest_ref
    keys = find(manifests, "Secret", "github-credentials")["stringData"]
    for credential in ("accessToken", "secretToken"):
        ref = spec[credential]["secretKeyRef"]
        assert ref["name"] == "github-credentials" and ref["key"] in keys

    tekton = find(manifests, "ConfigMap", "config-events")
    assert tekton["metadata"]["namespace"] == "tekton-pipelines"
    assert tekton["data"]["sink"] == INGEST_URL


def test_the_service_account_may_watch_deployments(manifests: list[Manifest]) -> None:
    account = find(manifests, "ApiServerSource", "dora-deployments")["spec"][
        "serviceAccountName"]
    binding = find(manifests, "ClusterRoleBinding", account)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account,
                                    "namespace": NAMESPACE}]
    role = find(manifests, "ClusterRole", binding["roleRef"]["name"])
    [rule] = [r for r in role["rules"] if "deployments" in r["resources"]]
    assert rule["apiGroups"] == ["apps"] and {"get", "list", "watch"} <= set(rule["verbs"])


def test_the_router_calls_the_transformer_functions(manifests: list[Manifest],
                                                    tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(find(manifests, "ConfigMap", "dora-config")["data"]["config.yaml"])
    settings = load_settings(config, environ={})
    assert settings.routes is not None
    remote = [target for route in settings.routes for target in route.to
              if target.startswith("http")]
    assert remote, "the tutorial runs the transformers as their own functions"
    for url in remote:
        parts = urlsplit(url)
        assert parts.hostname == f"dora-transformers.{NAMESPACE}.svc.cluster.local"
        name = parts.path.removeprefix("/transform/")
        assert name in builtin_transformers(), url
