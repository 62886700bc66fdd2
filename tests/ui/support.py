"""Helpers for the UI tests: reading Server-Sent Events, and events to post."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from dora_cloudevents.demo import sources


@dataclass
class Message:
    event: str
    data: dict[str, Any]
    id: str | None


def sse_messages(response: httpx.Response) -> Iterator[Message]:
    """Parse an event stream as it arrives (comments such as pings are skipped)."""
    event, data, ident = "message", [], None
    for line in response.iter_lines():
        if line == "":
            if data:
                yield Message(event, json.loads("\n".join(data)), ident)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                ident = value


def collect(messages: Iterator[Message], done: Any, seconds: float = 15,
            seen: list[Message] | None = None) -> list[Message]:
    """Messages (after those already ``seen``) until ``done(seen)``; fails after ``seconds``."""
    seen = list(seen or [])
    if done(seen):
        return seen
    deadline = time.monotonic() + seconds
    try:
        for message in messages:
            seen.append(message)
            if done(seen):
                return seen
            assert time.monotonic() < deadline, f"timed out; got {seen}"
    except httpx.ReadTimeout:
        raise AssertionError(f"nothing more arrived after {seen}") from None
    raise AssertionError(f"the stream ended early after {seen}")


def rollout(service: str = "shop", namespace: str = "production") -> dict[str, Any]:
    """A completed Kubernetes rollout (becomes a service.deployed CDEvent)."""
    return sources.kubernetes_rollout(
        str(uuid.uuid4()), service, namespace, str(uuid.uuid4()), 1,
        "ghcr.io/acme/shop:1f2e3d4c5b6a", "https://github.com/acme/shop",
        datetime.now(UTC).replace(microsecond=0), complete=True)


def ping(event_type: str = "com.example.ping", source: str = "/tests") -> dict[str, Any]:
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": source,
            "type": event_type, "data": {"hello": "world"}}


def post(client: httpx.Client, event: dict[str, Any]) -> None:
    response = client.post("/events", json=event,
                           headers={"content-type": "application/cloudevents+json"})
    assert response.status_code == 202, response.text


SCRIPT = "<script>alert('type')</script>"
IMAGE = "<img src=x onerror=alert('data')>"
LINK = "javascript:alert('source')"


def hostile_cloudevent() -> dict[str, Any]:
    """A raw CloudEvent whose type, source, subject and data try to run script."""
    return {"specversion": "1.0", "id": f"<b>{uuid.uuid4()}</b>", "source": LINK,
            "type": SCRIPT, "subject": IMAGE,
            "data": {"html": IMAGE, "link": LINK, "script": SCRIPT}}


def hostile_cdevent() -> dict[str, Any]:
    """A deployment whose service, environment and artifact try to run script."""
    return {"context": {"specversion": "0.5.1", "id": str(uuid.uuid4()), "source": LINK,
                        "type": "dev.cdevents.service.deployed.0.3.0",
                        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")},
            "subject": {"id": IMAGE, "content": {"environment": {"id": "production"},
                                                 "artifactId": LINK}},
            "customData": {"note": SCRIPT}}


def post_cdevent(client: httpx.Client, cdevent: dict[str, Any]) -> None:
    response = client.post("/cdevents", json=cdevent)
    assert response.status_code == 202, response.text


def until(check: Any, seconds: float = 15) -> Any:
    """Poll ``check()`` until it returns something true."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)
