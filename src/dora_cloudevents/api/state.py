"""What the app factory leaves on the app for its routes: the engine, the settings, read access."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import Engine

from dora_cloudevents.auth import require_reader
from dora_cloudevents.config import Settings


def request_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def request_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def read_access(request: Request) -> None:
    """A token from DORA_READ_TOKENS (bearer or the UI's sign-in cookie), when any is set."""
    require_reader(request, request_settings(request).read_tokens)
