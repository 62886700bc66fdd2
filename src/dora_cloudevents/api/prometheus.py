"""GET /metrics: the pipeline's health and the DORA values per service and environment."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from starlette.responses import Response

from dora_cloudevents.auth import require_bearer
from dora_cloudevents.config import Settings
from dora_cloudevents.metrics.dora import compute_dora
from dora_cloudevents.metrics.filters import resolve_selection
from dora_cloudevents.metrics.models import DoraReport
from dora_cloudevents.store.events import count_by_status
from dora_cloudevents.store.schema import cdevents_raw, cloudevents_raw, deployments

STAGES = (("router", cloudevents_raw), ("projector", cdevents_raw))


class PipelineCollector(Collector):
    """Counts read from the store at scrape time, so every replica reports the same truth."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stored = GaugeMetricFamily("dora_events", "Events in the store, by table and status",
                                   labels=["table", "status"])
        lag_events = GaugeMetricFamily("dora_queue_lag_events",
                                       "Events waiting for a stage", labels=["stage"])
        lag_seconds = GaugeMetricFamily("dora_queue_lag_seconds",
                                        "Age of the oldest event waiting for a stage",
                                        labels=["stage"])
        now = datetime.now(UTC)
        with self.engine.connect() as connection:
            for stage, table in STAGES:
                counts = count_by_status(connection, table)
                for status, count in sorted(counts.items()):
                    stored.add_metric([table.name, status], count)
                lag_events.add_metric([stage], counts.get("pending", 0))
                oldest = connection.execute(select(func.min(table.c.received_at)).where(
                    table.c.status == "pending")).scalar()
                lag_seconds.add_metric(
                    [stage], (now - oldest.replace(tzinfo=oldest.tzinfo or UTC)).total_seconds()
                    if oldest is not None else 0.0)
        yield from (stored, lag_events, lag_seconds)


_DORA_GAUGES: tuple[tuple[str, str, Callable[[DoraReport], float | None]], ...] = (
    ("dora_deployments", "Deployments in the last 90 days",
     lambda r: r.deployment_frequency.deployments),
    ("dora_deployments_per_week", "Deployments per week over the last 90 days",
     lambda r: r.deployment_frequency.per_week),
    ("dora_lead_time_median_seconds", "Median change lead time",
     lambda r: r.lead_time_for_changes.median_seconds),
    ("dora_change_failure_rate", "Failed deployments / deployments",
     lambda r: r.change_failure_rate.rate),
    ("dora_failed_deployment_recovery_median_seconds", "Median failed deployment recovery time",
     lambda r: r.failed_deployment_recovery_time.median_seconds),
    ("dora_time_to_restore_median_seconds", "Median time to restore service",
     lambda r: r.time_to_restore.median_seconds),
    ("dora_deployment_rework_rate", "Rework deployments / deployments",
     lambda r: r.deployment_rework_rate.rate),
)


class DoraCollector(Collector):
    """The DORA values for every (service, environment) with deployments, over the default
    90-day window. Recomputed at most every ``ttl`` seconds: scrapes are frequent and the
    values move slowly."""

    def __init__(self, engine: Engine, settings: Settings, ttl: float = 60.0) -> None:
        self.engine, self.settings, self.ttl = engine, settings, ttl
        self._cached: tuple[float, list[tuple[str, str, DoraReport]]] = (0.0, [])

    def _reports(self) -> list[tuple[str, str, DoraReport]]:
        computed_at, reports = self._cached
        if time.monotonic() - computed_at < self.ttl:
            return reports
        with self.engine.connect() as connection:
            pairs = connection.execute(select(deployments.c.service, deployments.c.environment)
                                       .distinct().order_by(deployments.c.service,
                                                            deployments.c.environment)).all()
        reports = [(service, environment, compute_dora(self.engine, resolve_selection(
            self.settings, service=service, environment=environment)))
            for service, environment in pairs]
        self._cached = (time.monotonic(), reports)
        return reports

    def collect(self) -> Iterator[GaugeMetricFamily]:
        reports = self._reports()
        for name, help_text, value_of in _DORA_GAUGES:
            gauge = GaugeMetricFamily(name, help_text, labels=["service", "environment"])
            for service, environment, report in reports:
                value = value_of(report)
                if value is not None:  # no data: no sample, rather than a made-up 0
                    gauge.add_metric([service, environment], float(value))
            yield gauge


def build_router(engine: Engine, settings: Settings) -> APIRouter:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(engine))
    registry.register(DoraCollector(engine, settings))
    router = APIRouter(tags=["health"])

    @router.get("/metrics", summary="Prometheus metrics: pipeline health and DORA values",
                response_class=Response)
    def metrics(request: Request) -> Response:
        require_bearer(request, settings.metrics_token, "metrics")
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
