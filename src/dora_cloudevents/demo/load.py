"""Load the demo history: POST it to the ingest endpoints in-process, then route and project.

The deliveries go through the real HTTP ingest path (the ASGI app ``dora-ce serve`` runs,
its parsing, checks and group commit) without a network server: httpx talks to the app
directly. Then the router and projector run to completion, as ``route --once`` and
``project --once`` would, so the dashboard is full when ``dora-ce serve`` starts.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import yaml
from sqlalchemy import Engine, func, select
from starlette.types import ASGIApp, Message

from dora_cloudevents.app import create_app
from dora_cloudevents.config import ServiceConfig, Settings
from dora_cloudevents.demo import world
from dora_cloudevents.metrics.projector import Projector
from dora_cloudevents.routing.router import Router, RouteStats
from dora_cloudevents.routing.targets import routing_from_settings
from dora_cloudevents.store.schema import cdevents_raw, cloudevents_raw

BATCH_EVENTS = 100
"""CloudEvents per batched request: well under the default 1 MiB body limit."""


class DemoError(RuntimeError):
    """The demo could not be loaded; the message says why."""


@dataclass
class DemoResult:
    deliveries: int = 0
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    route: RouteStats = field(default_factory=RouteStats)
    projected: int = 0


def demo_settings(settings: Settings) -> Settings:
    """``settings`` with the demo's service catalogue (the user's own entries win) and no
    ingest credentials: the demo is its own trusted sender, in-process."""
    services = {name: ServiceConfig.model_validate(entry)
                for name, entry in world.demo_services().items()}
    services.update(settings.services)
    return settings.model_copy(update={
        "services": services, "ingest_tokens": [], "pagerduty_webhook_secret": None,
        "github_webhook_secret": None, "gitlab_webhook_token": None})


def demo_config_yaml() -> str:
    """A config file naming the demo's services, aliases, teams and production environment."""
    return ("# Written by `dora-ce demo`: the sample company's service catalogue.\n"
            "# Serve with it so the dashboard can filter by team:\n"
            "#   dora-ce serve --config <this file>\n"
            + yaml.safe_dump({"services": world.demo_services(),
                              "production_environments": ["production"]}, sort_keys=False))


def stored_events(engine: Engine) -> int:
    """Raw CloudEvents plus CDEvents already in the database."""
    with engine.connect() as connection:
        return sum(int(connection.execute(select(func.count()).select_from(table)).scalar_one())
                   for table in (cloudevents_raw, cdevents_raw))


@asynccontextmanager
async def _running(app: ASGIApp) -> AsyncIterator[None]:
    """Start and stop ``app``'s lifespan (the group committer) around the requests."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()

    async def send(message: Message) -> None:
        await outbox.put(message)

    async def lifespan() -> None:
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get,
                  send)

    task = asyncio.create_task(lifespan())
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise DemoError(f"the ingest app did not start: {started.get('message', started)}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


def _request(path: str, bodies: list[dict[str, Any]]) -> tuple[str, bytes]:
    """(content type, body) for one request: a CloudEvents batch, a bare CDEvent, a webhook."""
    if path == "/events":
        return "application/cloudevents-batch+json", orjson.dumps(bodies)
    return "application/json", orjson.dumps(bodies[0])


async def _post_all(app: ASGIApp, deliveries: list[world.Delivery], result: DemoResult,
                    progress: Callable[[int], None]) -> None:
    transport = httpx.ASGITransport(app=app)
    async with _running(app), httpx.AsyncClient(transport=transport,
                                                base_url="http://demo.invalid") as client:
        for path, bodies in world.chunks(deliveries, BATCH_EVENTS):
            content_type, body = _request(path, bodies)
            response = await client.post(path, content=body,
                                         headers={"content-type": content_type})
            if response.status_code != 202:
                raise DemoError(f"POST {path} answered {response.status_code}: "
                                f"{response.text[:500]}")
            counts = response.json()
            result.requests += 1
            result.accepted += counts["accepted"]
            result.duplicates += counts["duplicates"]
            result.by_path[path] += len(bodies)
            progress(len(bodies))


def load_demo(engine: Engine, settings: Settings, deliveries: list[world.Delivery],
              progress: Callable[[int], None] = lambda _done: None) -> DemoResult:
    """Ingest ``deliveries`` (from world.generate) over HTTP in-process, then route and
    project everything."""
    settings = demo_settings(settings)
    result = DemoResult(deliveries=len(deliveries))
    app = create_app(settings, engine, {"ingest"})
    asyncio.run(_post_all(app, deliveries, result, progress))
    result.route = Router(engine, *routing_from_settings(settings)).route_all()
    result.projected = Projector(engine, settings).project_all()
    return result
