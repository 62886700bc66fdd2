"""The ``dora-ce`` command: thin wiring of settings, storage and the app for each sub-command."""

from __future__ import annotations

import logging
from typing import Any

import click
from sqlalchemy import Engine

from dora_cloudevents.config import ConfigError, Settings, load_settings
from dora_cloudevents.store.db import is_unavailable, make_engine
from dora_cloudevents.store.migrate import upgrade

COMPONENTS = ("ingest", "api")

db_option = click.option("--db", "database_url", metavar="URL",
                         help="Database URL (default sqlite:///dora.db; env DORA_DATABASE_URL).")
config_option = click.option("--config", "config_file", metavar="FILE",
                             type=click.Path(dir_okay=False),
                             help="YAML config file (env DORA_CONFIG).")


def _settings(config_file: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config_file, overrides)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def _open_database(settings: Settings) -> Engine:
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    except Exception as error:
        if is_unavailable(error):
            raise click.ClickException(
                f"cannot reach the database {engine.url.render_as_string(hide_password=True)}: "
                f"{str(error).splitlines()[0]}"
            ) from None
        raise
    return engine


def _components(value: str | None) -> tuple[str, ...]:
    if not value:
        return COMPONENTS
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@main.command()
@db_option
@config_option
@click.option("--host", help="Address to listen on (default 127.0.0.1; env DORA_HOST).")
@click.option("--port", type=int, help="Port (default 8080; env DORA_PORT).")
@click.option("--components", metavar="LIST",
              help=f"Comma-separated subset of: {', '.join(COMPONENTS)} (default: all).")
def serve(database_url: str | None, config_file: str | None, host: str | None,
          port: int | None, components: str | None) -> None:
    """Run the service: every stage in one process, or the chosen --components."""
    import uvicorn

    from dora_cloudevents.app import create_app

    settings = _settings(config_file, database_url=database_url, host=host, port=port)
    chosen = _components(components)
    engine = _open_database(settings)
    app = create_app(settings, engine, chosen)
    click.echo(f"dora-ce serving {', '.join(chosen)} on http://{settings.host}:{settings.port} "
               f"({engine.dialect.name})", err=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                access_log=False)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@db_option
@config_option
def db_upgrade(database_url: str | None, config_file: str | None) -> None:
    """Apply pending schema migrations (serve does this at start too)."""
    settings = _settings(config_file, database_url=database_url)
    engine = _open_database(settings)
    click.echo(f"database {engine.url.render_as_string(hide_password=True)} is up to date")

