"""Routing table semantics: globs on type and source, first match wins, continue, fan-out."""

from __future__ import annotations

import pytest

from dora_cloudevents.config import ConfigError, Route, Settings
from dora_cloudevents.routing.table import RoutingTable, default_routes
from dora_cloudevents.routing.targets import routing_from_settings
from dora_cloudevents.transformers import builtin_transformers


def table(*routes: dict[str, object]) -> RoutingTable:
    return RoutingTable([Route.model_validate(route) for route in routes])


def test_exact_and_glob_matches_first_wins() -> None:
    routes = table(
        {"match": {"type": "com.example.release"}, "to": ["exact"]},
        {"match": {"type": "com.example.*"}, "to": ["glob"]},
    )
    assert routes.targets_for({"type": "com.example.release"}) == ["exact"]
    assert routes.targets_for({"type": "com.example.other"}) == ["glob"]
    assert routes.targets_for({"type": "org.example.other"}) == []
    assert routes.targets_for({"type": "COM.EXAMPLE.other"}) == []  # types are case-sensitive


def test_source_glob_and_continue_fan_out() -> None:
    routes = table(
        {"match": {"type": "com.example.*", "source": "https://ci.example.com/*"},
         "to": ["ci", "audit"], "continue": True},
        {"match": {"type": "com.example.*"}, "to": ["audit", "generic"]},
    )
    assert routes.targets_for({"type": "com.example.x", "source": "https://ci.example.com/a"}
                              ) == ["ci", "audit", "generic"]
    assert routes.targets_for({"type": "com.example.x", "source": "/other"}) == [
        "audit", "generic"]


def test_default_table_covers_every_builtin_transformer() -> None:
    named = {target for route in default_routes() for target in route.to}
    assert named == set(builtin_transformers())


@pytest.mark.parametrize(("event_type", "expected"), [
    ("dev.knative.apiserver.resource.update", "kubernetes-deployment"),
    ("dev.tekton.event.pipelinerun.successful.v1", "tekton"),
    ("dev.knative.source.github.push", "github"),
    ("dev.knative.sources.gitlab.merge_request", "gitlab"),
    ("com.pagerduty.incident.triggered", "pagerduty"),
    ("io.prometheus.alertmanager.notification", "alertmanager"),
    ("io.argoproj.argocd.app.deployed", "argocd"),
    ("dev.cdevents.service.deployed.0.2.0", "cdevents"),
])
def test_default_routes(event_type: str, expected: str) -> None:
    assert RoutingTable().targets_for({"type": event_type, "source": "/s"}) == [expected]


def test_unknown_target_is_a_config_error() -> None:
    settings = Settings.model_validate(
        {"routes": [{"match": {"type": "x"}, "to": ["no-such-transformer"]}]})
    with pytest.raises(ConfigError, match="no-such-transformer"):
        routing_from_settings(settings)


def test_broken_jq_mapping_is_a_config_error() -> None:
    settings = Settings.model_validate({
        "routes": [{"match": {"type": "x"}, "to": ["m"]}],
        "mappings": {"m": {"jq": "{context: "}},
    })
    with pytest.raises(ConfigError, match="mapping 'm'"):
        routing_from_settings(settings)
