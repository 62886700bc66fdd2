"""The Helm chart, rendered by a real helm for every mode (the values files under the chart's
ci/ folder), linted, and every manifest checked against its schema; then what each mode
must get right: one migrating process, credentials from Secrets, the config file valid for
dora-ce, probes, non-root pods."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from dora_cloudevents.config import load_settings
from tests.deploy.manifests import Manifest, containers, documents, env_of, here, run, tool
from tests.deploy.manifests import validate as validate_manifest

CHART = here("deploy", "helm", "dora-cloudevents")
MODES = sorted(path.name.removesuffix("-values.yaml") for path in (CHART / "ci").glob("*.yaml"))
CREDENTIALS = {"DORA_INGEST_TOKENS", "DORA_READ_TOKENS", "DORA_GITHUB_WEBHOOK_SECRET",
               "DORA_GITLAB_WEBHOOK_TOKEN", "DORA_PAGERDUTY_WEBHOOK_SECRET"}
WORKLOADS = {"Deployment", "StatefulSet", "Job", "CronJob", "Service"}


def values_file(mode: str) -> str:
    return str(CHART / "ci" / f"{mode}-values.yaml")


def render(mode: str, *extra: str) -> list[Manifest]:
    return documents(run(tool("helm"), "template", "dora", str(CHART), "-f", values_file(mode),
                         *extra))


def component(manifest: Manifest) -> str:
    component: str = manifest["metadata"]["labels"]["app.kubernetes.io/component"]
    return component


def inventory(manifests: list[Manifest]) -> Counter[tuple[str, str]]:
    return Counter((m["kind"] if m["apiVersion"] != "serving.knative.dev/v1" else "ksvc",
                    component(m)) for m in manifests)


def test_the_modes_are_the_ones_documented() -> None:
    assert MODES == ["cronjob", "distributed-bundled", "distributed-external", "embedded",
                     "knative", "servicemonitor"]


@pytest.mark.parametrize("mode", MODES)
def test_helm_lint_is_clean(mode: str) -> None:
    output = run(tool("helm"), "lint", str(CHART), "--strict", "-f", values_file(mode))
    assert "0 chart(s) failed" in output


@pytest.mark.parametrize("mode", MODES)
def test_every_rendered_manifest_is_valid(mode: str) -> None:
    manifests = render(mode)
    checked = {f"{m['kind']}/{m['metadata']['name']}": validate_manifest(m) for m in manifests}
    assert "unchecked" not in checked.values(), checked


EXPECTED = {
    "embedded": {("Secret", "credentials"), ("ConfigMap", "config"),
                 ("PersistentVolumeClaim", "embedded"), ("Deployment", "embedded"),
                 ("Service", "embedded")},
    "distributed-external": {
        ("Secret", "credentials"), ("ConfigMap", "config"), ("Job", "migrate"),
        *((kind, stage) for stage in ("ingest", "api", "transform")
          for kind in ("Deployment", "Service")),
        ("Deployment", "router"), ("Deployment", "projector")},
    "distributed-bundled": {
        ("Secret", "credentials"), ("ConfigMap", "config"), ("Job", "migrate"),
        ("Deployment", "ingest"), ("Service", "ingest"), ("Deployment", "api"),
        ("Service", "api"), ("Deployment", "router"), ("Deployment", "projector"),
        ("Secret", "postgresql"), ("Service", "postgresql"), ("StatefulSet", "postgresql")},
    "knative": {
        ("Secret", "credentials"), ("ConfigMap", "config"), ("Job", "migrate"),
        ("ksvc", "ingest"), ("ksvc", "api"), ("ksvc", "transform"),
        ("Deployment", "router"), ("Deployment", "projector"),
        ("Secret", "postgresql"), ("Service", "postgresql"), ("StatefulSet", "postgresql")},
    "cronjob": {
        ("Secret", "credentials"), ("ConfigMap", "config"), ("Job", "migrate"),
        ("ksvc", "ingest"), ("ksvc", "api"), ("CronJob", "router"), ("CronJob", "projector")},
    "servicemonitor": {
        ("Secret", "credentials"), ("ConfigMap", "config"), ("Job", "migrate"),
        ("Deployment", "ingest"), ("Service", "ingest"), ("Deployment", "api"),
        ("Service", "api"), ("Deployment", "router"), ("Deployment", "projector"),
        ("ServiceMonitor", "api")},
}


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_renders_its_workloads_once(mode: str) -> None:
    rendered = inventory(render(mode))
    assert set(rendered) == EXPECTED[mode]
    assert max(rendered.values()) == 1


def dora_containers(manifests: list[Manifest]) -> list[tuple[Manifest, Manifest]]:
    return [(m, c) for m in manifests if m["kind"] in WORKLOADS | {"Service"}
            and "spec" in m and ("template" in m["spec"] or "jobTemplate" in m["spec"])
            for c in containers(m) if c["name"] == "dora-ce"]


@pytest.mark.parametrize("mode", MODES)
def test_only_one_process_migrates(mode: str) -> None:
    migrating = [(m["kind"], component(m)) for m, c in dora_containers(render(mode))
                 if env_of(c)["DORA_MIGRATE"] == "true"]
    if mode == "embedded":
        assert migrating == [("Deployment", "embedded")]
    else:
        assert migrating == [("Job", "migrate")]


def test_stages_run_the_right_commands() -> None:
    commands = {component(m): c["args"] for m, c in dora_containers(render("cronjob"))}
    assert commands == {"migrate": ["db", "upgrade", "--wait", "300"],
                        "ingest": ["serve", "--components", "ingest"],
                        "api": ["serve", "--components", "api"],
                        "router": ["route", "--once"], "projector": ["project", "--once"]}
    continuous = {component(m): c["args"]
                  for m, c in dora_containers(render("distributed-external"))}
    assert continuous["router"] == ["serve", "--components", "router"]
    assert continuous["projector"] == ["serve", "--components", "projector"]
    assert continuous["transform"] == ["serve", "--components", "transform"]


def secret_data(manifests: list[Manifest], name_part: str) -> dict[str, str]:
    [secret] = [m for m in manifests if m["kind"] == "Secret" and name_part in
                m["metadata"]["name"]]
    data: dict[str, str] = secret["stringData"]
    return data


def test_credentials_come_from_a_secret_with_the_documented_names() -> None:
    manifests = render("embedded")
    data = secret_data(manifests, "credentials")
    assert set(data) == CREDENTIALS
    assert data["DORA_INGEST_TOKENS"] == "ingest-token-1,12345"
    for _, container in dora_containers(manifests):
        assert container["envFrom"] == [{"secretRef": {"name": "dora-dora-cloudevents-"
                                                                "credentials"}}]
        assert env_of(container)["DORA_DATABASE_URL"] == "sqlite:////data/dora.db"


def database_urls(mode: str) -> set[str]:
    return {yaml.safe_dump(env_of(c)["DORA_DATABASE_URL"])
            for _, c in dora_containers(render(mode))}


def test_every_distributed_stage_reads_the_database_url_from_a_secret() -> None:
    external = render("distributed-external")
    assert secret_data(external, "credentials")["DORA_DATABASE_URL"].startswith(
        "postgresql+psycopg://dora:s3cret@")
    assert all("DORA_DATABASE_URL" not in env_of(c) for _, c in dora_containers(external))

    bundled = render("distributed-bundled")
    url = secret_data(bundled, "postgresql")["DORA_DATABASE_URL"]
    assert url == ("postgresql+psycopg://dora:not-a-real-password@"
                   "dora-dora-cloudevents-postgresql:5432/dora")
    refs = {str(env_of(c)["DORA_DATABASE_URL"]) for _, c in dora_containers(bundled)}
    assert refs == {str({"secretKeyRef": {"name": "dora-dora-cloudevents-postgresql",
                                          "key": "DORA_DATABASE_URL"}})}

    existing = {str(env_of(c)["DORA_DATABASE_URL"]) for _, c in dora_containers(
        render("cronjob"))}
    assert existing == {str({"secretKeyRef": {"name": "my-database", "key": "url"}})}


def test_the_config_map_is_a_config_file_dora_ce_accepts(tmp_path: Path) -> None:
    [config_map] = [m for m in render("embedded") if m["kind"] == "ConfigMap"]
    config = tmp_path / "config.yaml"
    config.write_text(config_map["data"]["config.yaml"])
    settings = load_settings(config, environ={})
    assert settings.routes is not None and len(settings.routes) == 3
    assert settings.production_environments == ["production"]
    assert "release" in settings.mappings and settings.services["shop"].team == "payments"
    [default] = [m for m in render("distributed-external") if m["kind"] == "ConfigMap"]
    config.write_text(default["data"]["config.yaml"])
    assert load_settings(config, environ={}).routes is None  # the built-in table


@pytest.mark.parametrize("mode", MODES)
def test_pods_run_as_non_root_with_probes(mode: str) -> None:
    for manifest, container in dora_containers(render(mode)):
        spec = manifest["spec"]
        if manifest["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        pod: dict[str, Any] = spec["template"]["spec"]
        non_root = {**pod.get("securityContext", {}), **container["securityContext"]}
        assert non_root["runAsNonRoot"] is True, manifest["metadata"]["name"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        if "ports" in container:
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_service_monitor_scrapes_the_api_with_its_token() -> None:
    manifests = render("servicemonitor")
    [monitor] = [m for m in manifests if m["kind"] == "ServiceMonitor"]
    [api] = [m for m in manifests if m["kind"] == "Service" and component(m) == "api"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= api["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] == api["spec"]["ports"][0]["name"]
    assert endpoint["bearerTokenSecret"]["key"] == "DORA_METRICS_TOKEN"
    assert secret_data(manifests, "credentials")["DORA_METRICS_TOKEN"] == "metrics-token"


@pytest.mark.parametrize(("settings", "message"), [
    (["--set", "mode=bogus"], "mode must be one of"),
    (["--set", "config.database_url=sqlite:///x.db"], "config"),
    (["--set", "router.mode=sometimes"], "router.mode"),
    (["--set", "mode=distributed"], "needs exactly one database"),
    (["--set", "knative.enabled=true"], "knative.enabled needs mode=distributed"),
    (["-f", values_file("knative"), "--set", "serviceMonitor.enabled=true"],
     "no plain Service to select under Knative"),
])
def test_bad_values_are_refused_with_a_reason(settings: list[str], message: str) -> None:
    import subprocess

    result = subprocess.run([tool("helm"), "template", "dora", str(CHART), *settings],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
