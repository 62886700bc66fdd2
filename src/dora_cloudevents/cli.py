"""The ``dora-ce`` command: thin wiring of settings, storage and the app for each sub-command."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx
import orjson
from sqlalchemy import Engine

from dora_cloudevents.app import ALL_COMPONENTS, COMPONENTS
from dora_cloudevents.auth import configured_secrets
from dora_cloudevents.background import run_continuously
from dora_cloudevents.config import ConfigError, Settings, load_settings
from dora_cloudevents.events import CloudEvent, format_rfc3339
from dora_cloudevents.ingest.files import DEFAULT_BATCH_SIZE, import_lines, send_file
from dora_cloudevents.logs import FORMATS, configure_logging
from dora_cloudevents.metrics.projector import Projector, reset_projection
from dora_cloudevents.routing.router import Router, RouteStats, transform_event
from dora_cloudevents.routing.targets import routing_from_settings
from dora_cloudevents.store.db import is_unavailable, make_engine, write_transaction
from dora_cloudevents.store.events import count_by_status, reset_for_rerouting
from dora_cloudevents.store.migrate import SchemaNotReady, upgrade, wait_until_migrated
from dora_cloudevents.store.schema import cloudevents_raw
from dora_cloudevents.transformers.base import TransformError, url_parts

log = logging.getLogger(__name__)

db_option = click.option("--db", "database_url", metavar="URL",
                         help="Database URL (default sqlite:///dora.db; env DORA_DATABASE_URL).")
config_option = click.option("--config", "config_file", metavar="FILE",
                             type=click.Path(dir_okay=False),
                             help="YAML config file (env DORA_CONFIG).")
no_migrate_option = click.option(
    "--no-migrate", "no_migrate", is_flag=True, default=False,
    help="Do not migrate the database; wait until `dora-ce db upgrade` has (for replicas; "
         "env DORA_MIGRATE=false).")


def _settings(config_file: str | None, **overrides: Any) -> Settings:
    try:
        settings = load_settings(config_file, overrides)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    configure_logging(settings.log_format, configured_secrets(settings))
    return settings


def _migrate(no_migrate: bool) -> bool | None:
    """--no-migrate overrides DORA_MIGRATE and the config file; absent, they decide."""
    return False if no_migrate else None


def _open_database(settings: Settings) -> Engine:
    engine = make_engine(settings.database_url)
    try:
        if settings.migrate:
            upgrade(engine)
        else:
            wait_until_migrated(engine)
    except SchemaNotReady as error:
        raise click.ClickException(str(error)) from None
    except Exception as error:
        if is_unavailable(error):
            raise _unreachable(engine, error) from None
        raise
    return engine


def _unreachable(engine: Engine, error: Exception) -> click.ClickException:
    return click.ClickException(
        f"cannot reach the database {engine.url.render_as_string(hide_password=True)}: "
        f"{str(error).splitlines()[0]}")


def _components(value: str | None) -> tuple[str, ...]:
    if not value:
        return tuple(c for c in COMPONENTS if c in ALL_COMPONENTS)
    chosen = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(set(chosen) - set(COMPONENTS))
    if unknown:
        raise click.BadParameter(f"unknown component(s) {', '.join(unknown)}; choose from "
                                 + ", ".join(COMPONENTS))
    return chosen


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dora-cloudevents")
def main() -> None:
    """dora-cloudevents: CloudEvents in, CDEvents through, DORA metrics out."""
    configure_logging()  # until a command's settings say which format


@main.command()
@db_option
@config_option
@click.option("--host", help="Address to listen on (default 127.0.0.1; env DORA_HOST).")
@click.option("--port", type=int, help="Port (default 8080; env DORA_PORT).")
@click.option("--components", metavar="LIST",
              help=f"Comma-separated subset of: {', '.join(COMPONENTS)} "
              f"(default: {', '.join(sorted(ALL_COMPONENTS))}).")
@no_migrate_option
@click.option("--log-format", type=click.Choice(FORMATS),
              help="Log lines as text or JSON objects (default text; env DORA_LOG_FORMAT).")
def serve(database_url: str | None, config_file: str | None, host: str | None,
          port: int | None, components: str | None, no_migrate: bool,
          log_format: str | None) -> None:
    """Run the service: every stage in one process, or the chosen --components."""
    import uvicorn

    from dora_cloudevents.app import create_app

    settings = _settings(config_file, database_url=database_url, host=host, port=port,
                         migrate=_migrate(no_migrate), log_format=log_format)
    chosen = _components(components)
    engine = _open_database(settings)
    try:
        app = create_app(settings, engine, chosen)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    # A log line, not an echo: with --log-format json, standard error is all JSON.
    log.info("dora-ce serving %s on http://%s:%d (%s)", ", ".join(chosen), settings.host,
             settings.port, engine.dialect.name)
    # log_config=None: uvicorn's own lines go through the format configured above.
    # proxy_headers=False: the app applies them itself, to the API only (api_middleware).
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                access_log=False, log_config=None, proxy_headers=False,
                # Bounds the header block if uvicorn falls back to h11 (no httptools).
                h11_max_incomplete_event_size=settings.max_header_bytes)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@db_option
@config_option
@click.option("--wait", "wait_seconds", type=float, default=0, show_default=True,
              metavar="SECONDS",
              help="Retry this long while the database is unreachable (a Job started beside "
                   "its database).")
def db_upgrade(database_url: str | None, config_file: str | None, wait_seconds: float) -> None:
    """Apply pending schema migrations (serve does this at start too, unless --no-migrate)."""
    settings = _settings(config_file, database_url=database_url)
    engine = make_engine(settings.database_url)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            applied = upgrade(engine)
            break
        except Exception as error:
            if not is_unavailable(error):
                raise
            if time.monotonic() >= deadline:
                raise _unreachable(engine, error) from None
            time.sleep(1)
    where = engine.url.render_as_string(hide_password=True)
    click.echo(f"database {where}: " + ("migrations applied, " if applied else "") +
               "up to date")



def _router(settings: Settings, engine: Engine) -> Router:
    try:
        table, targets = routing_from_settings(settings)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    return Router(engine, table, targets)


def _print_route_stats(stats: RouteStats, engine: Engine) -> None:
    click.echo(f"routed {stats.routed}, unrouted {stats.unrouted}, failed {stats.failed}; "
               f"{stats.cdevents} CDEvents stored")
    with engine.connect() as connection:
        totals = count_by_status(connection, cloudevents_raw)
    click.echo("raw events by status: " + (", ".join(
        f"{status} {count}" for status, count in sorted(totals.items())) or "none"))


once_option = click.option("--once", is_flag=True,
                           help="One pass over what is pending, then exit (for a CronJob).")


def _run_until_stopped(name: str, step: Callable[[], int]) -> None:
    """Run one stage continuously in this process (a Deployment rather than a CronJob)."""
    asyncio.run(run_continuously(name, step, asyncio.Event()))


@main.command()
@db_option
@config_option
@once_option
@no_migrate_option
def route(database_url: str | None, config_file: str | None, once: bool,
          no_migrate: bool) -> None:
    """Turn pending raw CloudEvents into CDEvents with the routing table."""
    settings = _settings(config_file, database_url=database_url, migrate=_migrate(no_migrate))
    engine = _open_database(settings)
    router = _router(settings, engine)
    if once:
        _print_route_stats(router.route_all(), engine)
    else:
        _run_until_stopped("router", lambda: router.route_batch().events)


@main.command()
@db_option
@config_option
@once_option
@no_migrate_option
def project(database_url: str | None, config_file: str | None, once: bool,
            no_migrate: bool) -> None:
    """Apply pending CDEvents to the entities the metrics are computed from."""
    settings = _settings(config_file, database_url=database_url, migrate=_migrate(no_migrate))
    engine = _open_database(settings)
    projector = Projector(engine, settings)
    if once:
        click.echo(f"projected {projector.project_all()} CDEvents")
    else:
        _run_until_stopped("projector", projector.project_batch)


@main.command()
@db_option
@config_option
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Router stage: only raw events received at or after this UTC time.")
@click.option("--stage", type=click.Choice(["router", "projector"]), default="router",
              show_default=True,
              help="router: re-route raw events (and rebuild the projection); projector: "
                   "rebuild the entities from the stored CDEvents.")
@click.option("--failed", "failed_only", is_flag=True, help="Only raw events that failed.")
def replay(database_url: str | None, config_file: str | None, since: datetime | None,
           stage: str, failed_only: bool) -> None:
    """Re-process history after the routing table, a mapping, a transformer or the service
    catalogue changed."""
    settings = _settings(config_file, database_url=database_url)
    engine = _open_database(settings)
    if stage == "router":
        router = _router(settings, engine)
        with write_transaction(engine) as connection:
            reset = reset_for_rerouting(
                connection, since=since.replace(tzinfo=UTC) if since else None,
                failed_only=failed_only)
        click.echo(f"{reset} raw event(s) sent back to the router")
        _print_route_stats(router.route_all(), engine)
    # Routing re-derives CDEvents (new rows), so the projection is rebuilt either way.
    with write_transaction(engine) as connection:
        reset_projection(connection)
    click.echo(f"projection rebuilt from {Projector(engine, settings).project_all()} CDEvents")


@main.command()
@db_option
@config_option
@click.option("--service", help="Service (canonical name or alias); several comma-separated.")
@click.option("--team", help="Team from the configuration's services: (selects its services).")
@click.option("--environment", help="Environment(s), comma-separated; default: the configured "
              "production environments (all when none are); * for all.")
@click.option("--from", "start", metavar="TIME",
              help="Start of the window, RFC 3339 or YYYY-MM-DD (default: to - 90 days).")
@click.option("--to", "end", metavar="TIME",
              help="End of the window (exclusive), RFC 3339 or YYYY-MM-DD (default: now).")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="A table for people, or the /api/v1/dora JSON.")
def report(database_url: str | None, config_file: str | None, service: str | None,
           team: str | None, environment: str | None, start: str | None, end: str | None,
           output: str) -> None:
    """The DORA metrics of a selection: the same numbers as GET /api/v1/dora."""
    from dora_cloudevents.metrics.dora import compute_dora
    from dora_cloudevents.metrics.filters import FilterError, resolve_selection

    settings = _settings(config_file, database_url=database_url)
    try:
        selection = resolve_selection(settings, start=start, end=end, service=service,
                                      team=team, environment=environment)
    except FilterError as error:
        raise click.UsageError(str(error)) from None
    result = compute_dora(_open_database(settings), selection)
    if output == "json":
        click.echo(result.to_json().decode())
        return
    from rich.console import Console

    from dora_cloudevents.metrics.render import report_table

    Console().print(report_table(result, selection))


@main.command()
@config_option
@click.option("--route", "event_type", metavar="TYPE",
              help="CloudEvent type to give input that is a bare payload, not a CloudEvent.")
@click.option("--source", default="/dora-ce/transform", show_default=True,
              help="CloudEvent source for a bare payload.")
def transform(config_file: str | None, event_type: str | None, source: str) -> None:
    """Dry-run: print the CDEvents the routing table makes of the event on standard input."""
    settings = _settings(config_file)
    try:
        table, targets = routing_from_settings(settings)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    event = _read_event(sys.stdin.read(), event_type, source)
    names = table.targets_for(event)
    if not names:
        raise click.ClickException(f"no route matches type {event.get('type')!r}: the event "
                                   "would be kept raw as unrouted")
    try:
        produced = transform_event(event, [(name, targets[name]) for name in names])
    except TransformError as error:
        raise click.ClickException(f"the event would fail: {error}") from None
    click.echo(f"routes to: {', '.join(names)}; {len(produced)} CDEvent(s)", err=True)
    click.echo(orjson.dumps([cdevent for _, cdevent, _ in produced],
                            option=orjson.OPT_INDENT_2).decode())


def _read_event(text: str, event_type: str | None, source: str) -> CloudEvent:
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise click.ClickException(f"standard input is not JSON: {error}") from None
    if isinstance(payload, dict) and "specversion" in payload:
        if event_type:
            payload["type"] = event_type
        return payload
    if not event_type:
        raise click.ClickException("standard input is not a CloudEvent; give --route TYPE to "
                                   "wrap the payload in one")
    return {"specversion": "1.0", "id": "dry-run", "source": source, "type": event_type,
            "time": format_rfc3339(datetime.now(UTC)), "data": payload}


def _events_url(url: str) -> str:
    """``url``, or its /events endpoint when it names no path; a usage error if it is no
    http(s) URL."""
    parts = url_parts(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="'--url'")
    return url if parts.path.strip("/") else url.rstrip("/") + "/events"


@main.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", default="http://127.0.0.1:8080", show_default=True,
              help="The server; its /events endpoint unless the URL names a path.")
@click.option("--token", envvar="DORA_TOKEN", help="Ingest bearer token (env DORA_TOKEN).")
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH_SIZE,
              show_default=True, help="Events per request for arrays and JSON Lines.")
def send(files: tuple[Path, ...], url: str, token: str | None, batch_size: int) -> None:
    """POST event files (a CloudEvent, a JSON array batch, or JSON Lines) to a server."""
    target = _events_url(url)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    failed = False
    with httpx.Client(headers=headers, timeout=60) as http:
        for path in files:
            try:
                outcome = send_file(http, target, path, batch_size)
            except httpx.HTTPError as error:
                raise click.ClickException(f"cannot reach {target}: {error}") from None
            click.echo(outcome.describe(), err=outcome.failure is not None)
            failed = failed or outcome.failure is not None
    if failed:
        sys.exit(1)


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
@config_option
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH_SIZE,
              show_default=True, help="Events per transaction.")
def import_(file: Path, database_url: str | None, config_file: str | None,
            batch_size: int) -> None:
    """Store a JSON Lines file of CloudEvents straight into the database (no server)."""
    from rich.console import Console
    from rich.progress import Progress

    settings = _settings(config_file, database_url=database_url)
    engine = _open_database(settings)
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"importing {file.name}", total=None)
        outcome = import_lines(engine, settings, file, batch_size,
                               lambda done, total: bar.update(task, completed=done, total=total))
    if outcome.failure is not None:
        raise click.ClickException(outcome.describe())
    click.echo(outcome.describe())


@main.command()
@db_option
@config_option
@click.option("--seed", type=int, default=42, show_default=True,
              help="Random seed: the same seed and --end give the same history.")
@click.option("--days", type=click.IntRange(7, 730), default=120, show_default=True,
              help="How many days of history, up to --end.")
@click.option("--end", metavar="TIME", help="End of the history, RFC 3339 or YYYY-MM-DD "
              "(default: now, to the hour).")
@click.option("--write-config", metavar="FILE", default="dora-demo.yaml", show_default=True,
              help="Where to write the demo's service catalogue (teams, aliases); '' for none.")
@click.option("--force", is_flag=True, help="Add the demo to a database that has events.")
def demo(database_url: str | None, config_file: str | None, seed: int, days: int,
         end: str | None, write_config: str, force: bool) -> None:
    """Load a realistic sample history (five services, three teams, months of GitHub,
    Kubernetes, Tekton, PagerDuty events and native CDEvents) through the ingest path."""
    from pathlib import Path

    from rich.progress import Progress

    from dora_cloudevents.demo.load import (
        DemoError,
        demo_config_yaml,
        load_demo,
        stored_events,
    )
    from dora_cloudevents.demo.world import generate
    from dora_cloudevents.metrics.filters import FilterError, parse_moment

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    settings = _settings(config_file, database_url=database_url)
    try:
        until = (parse_moment(end, "end") if end else
                 datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    except FilterError as error:
        raise click.BadParameter(str(error), param_hint="--end") from None
    engine = _open_database(settings)
    existing = stored_events(engine)
    if existing and not force:
        raise click.ClickException(
            f"the database already holds {existing} events; the demo goes into an empty one "
            "(e.g. --db sqlite:///demo.db), or add it anyway with --force")
    deliveries = generate(seed, until, days)
    with Progress(transient=True) as progress:
        task = progress.add_task("sending the demo's events", total=len(deliveries))
        try:
            result = load_demo(engine, settings, deliveries,
                               progress=lambda done: progress.advance(task, done))
        except DemoError as error:
            raise click.ClickException(str(error)) from None
    sent = ", ".join(f"{count} to {path}" for path, count in sorted(result.by_path.items()))
    click.echo(f"sent {result.deliveries} events in {result.requests} requests ({sent}): "
               f"{result.accepted} accepted, {result.duplicates} duplicates")
    _print_route_stats(result.route, engine)
    click.echo(f"projected {result.projected} CDEvents")
    hint = "dora-ce serve"
    if write_config:
        Path(write_config).write_text(demo_config_yaml(), encoding="utf-8")
        click.echo(f"wrote the demo's services and teams to {write_config}")
        hint += f" --config {write_config}"
    if database_url:
        hint += f" --db {database_url}"
    click.echo(f"next: {hint}   then open http://{settings.host}:{settings.port}/")
