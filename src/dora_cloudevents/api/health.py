"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from dora_cloudevents.problems import Problem


def build_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is up")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @router.get("/readyz", summary="The database answers")
    def readyz(request: Request) -> dict[str, Any]:
        try:
            with request.app.state.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:
            raise Problem(503, f"the database is not reachable ({error.__class__.__name__})",
                          headers={"Retry-After": "5"}) from None
        return {"status": "ready", "database": request.app.state.engine.dialect.name}

    return router
