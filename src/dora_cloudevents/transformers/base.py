"""What a transformer is: a named function from one CloudEvent to zero or more CDEvents."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from dora_cloudevents.events import CDEvent, CloudEvent

TransformFunction = Callable[[CloudEvent], list[CDEvent]]


class TransformError(Exception):
    """The event cannot be transformed; the message says why (it is stored with the event)."""


@dataclass(frozen=True)
class Transformer:
    """A built-in transformer. ``name`` is what routes refer to."""

    name: str
    transform: TransformFunction
    description: str = ""

    def __call__(self, event: CloudEvent) -> list[CDEvent]:
        return self.transform(event)


def json_data(event: CloudEvent) -> dict[str, Any]:
    """The event's data as a JSON object (decoding ``data_base64`` or JSON text if needed)."""
    data = event.get("data")
    if data is None and "data_base64" in event:
        try:
            data = base64.b64decode(event["data_base64"])
        except (binascii.Error, ValueError) as error:
            raise TransformError("data_base64 is not valid base64") from error
    if isinstance(data, bytes | str):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise TransformError(f"the event data is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise TransformError(f"the event data must be a JSON object, got {type(data).__name__}")
    return data


def _has_step(value: Any, step: str | int) -> bool:
    if isinstance(step, int):
        return isinstance(value, list) and -len(value) <= step < len(value)
    return isinstance(value, dict) and step in value


def dig(value: Any, *path: str | int, default: Any = None) -> Any:
    """``value[path[0]][path[1]]...``, or ``default`` where any step is missing or mistyped."""
    for step in path:
        if not _has_step(value, step):
            return default
        value = value[step]
    return default if value is None else value


def split_image(image: str) -> tuple[str, str, str | None, str | None]:
    """``registry``, ``path``, ``tag``, ``digest`` of a container image reference."""
    rest, _, digest = image.partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = "docker.io", rest
    tag = None
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    return registry, path, tag, digest or None


def image_purl(image: str) -> str:
    """A package URL for a container image: ``pkg:oci/<name>@<digest or tag>?repository_url=…``."""
    registry, path, tag, digest = split_image(image)
    version = (digest or tag or "latest").replace(":", "%3A")
    name = path.rsplit("/", 1)[-1]
    return f"pkg:oci/{name}@{version}?repository_url={registry}/{path}"
