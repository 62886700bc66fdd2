"""Settings: command-line flags, then DORA_* environment variables, then the YAML config file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

DEFAULT_DATABASE_URL = "sqlite:///dora.db"
ENV_PREFIX = "DORA_"


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouteMatch(_Strict):
    type: str = Field(min_length=1, description="Event type, exact or glob (fnmatch).")
    source: str | None = Field(default=None, description="Optional source glob.")


class Route(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    match: RouteMatch
    to: list[str] = Field(min_length=1, description="Transformer names or http(s) URLs.")
    continue_: bool = Field(
        default=False, alias="continue",
        description="Keep matching later routes after this one (default: first match wins).",
    )


class Mapping_(_Strict):
    """A declarative transformer: a jq program that turns a CloudEvent into CDEvents."""

    jq: str = Field(min_length=1, description="jq program; each output is one CDEvent.")
    description: str = ""


class ServiceConfig(_Strict):
    aliases: list[str] = Field(default_factory=list)
    team: str | None = None


def _split_csv(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(_Strict):
    """Everything the service can be told. Field names are the config file's keys."""

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    max_batch_events: int = Field(default=1000, gt=0)
    max_extension_attributes: int = Field(default=64, ge=0)
    max_json_depth: int = Field(default=64, gt=0, le=512)
    max_headers: int = Field(default=100, gt=0)
    max_header_bytes: int = Field(default=32 * 1024, gt=0)
    body_read_timeout_seconds: float = Field(default=30.0, gt=0)
    ingest_tokens: list[SecretStr] = Field(default_factory=list)
    read_tokens: list[SecretStr] = Field(default_factory=list)
    # One key, several tokens (a list, or comma-separated) so a scraper's token can be rotated.
    metrics_token: list[SecretStr] = Field(default_factory=list)
    github_webhook_secret: SecretStr | None = None
    gitlab_webhook_token: SecretStr | None = None
    pagerduty_webhook_secret: SecretStr | None = None
    routes: list[Route] | None = Field(
        default=None, description="Routing table; None means the built-in default table."
    )
    mappings: dict[str, Mapping_] = Field(default_factory=dict)
    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    production_environments: list[str] = Field(default_factory=list)
    attribution_window: timedelta = timedelta(hours=24)
    log_format: str = Field(default="text", pattern="^(text|json)$")
    remote_timeout_seconds: float = Field(default=10.0, gt=0)
    remote_attempts: int = Field(default=3, ge=1, le=10)
    migrate: bool = Field(
        default=True, description="Apply migrations at start; false: wait for `db upgrade`."
    )

    _csv = field_validator(
        "ingest_tokens", "read_tokens", "metrics_token", "production_environments",
        mode="before"
    )(_split_csv)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot be read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of settings")
    return loaded


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in environ and environ[key] != "":
            values[name] = environ[key]
    return values


def _describe(error: ValidationError, origins: Mapping[str, str]) -> str:
    """One clause per problem, each naming where the bad value came from."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        origin = origins.get(str(item["loc"][0]) if item["loc"] else "", "settings")
        problems.append(f"{origin}: {where}: {item['msg']}")
    return "; ".join(problems)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults < config file < environment < flags (``overrides``; None values ignored)."""
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get(ENV_PREFIX + "CONFIG") or None
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    layers = [
        (f"config file {config_file}",
         _read_config_file(Path(config_file)) if config_file else {}),
        ("environment", _from_environment(environ)),
        ("command line", {k: v for k, v in (overrides or {}).items() if v is not None}),
    ]
    for origin, layer in layers:
        values.update(layer)
        origins.update(dict.fromkeys(layer, origin))
    for key in origins:
        if origins[key] == "environment":
            origins[key] = f"environment variable {ENV_PREFIX}{key.upper()}"
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origins)) from exc
