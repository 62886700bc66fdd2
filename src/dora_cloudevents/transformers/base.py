"""What a transformer is: a named function from one CloudEvent to zero or more CDEvents."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

import orjson

from dora_cloudevents.cdevents import is_uri_reference
from dora_cloudevents.events import CDEvent, CloudEvent, format_rfc3339, parse_rfc3339

TransformFunction = Callable[[CloudEvent], list[CDEvent]]

_FRACTION = re.compile(r"\.([0-9]+)")


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


def dig_list(value: Any, *path: str | int) -> list[Any]:
    """The list at ``path``; empty where it is missing or not a list (a number, an object)."""
    found = dig(value, *path)
    return found if isinstance(found, list) else []


def dig_text(value: Any, *path: str | int) -> str | None:
    """The non-empty string at ``path``, else None (also for a number, a list, an object)."""
    found = dig(value, *path)
    return found if isinstance(found, str) and found else None


def url_parts(value: Any) -> SplitResult | None:
    """``value`` split as a URL; None for a non-string, or for a string ``urlsplit`` refuses
    (an unbalanced "[" raises ValueError: "Invalid IPv6 URL")."""
    if not isinstance(value, str):
        return None
    try:
        return urlsplit(value)
    except ValueError:
        return None


def url_origin(value: Any) -> str | None:
    """``scheme://host[:port]`` of the URL ``value``, if it has both and that is a URI
    reference (a host may hold characters no URI allows)."""
    parts = url_parts(value)
    if parts is None or not parts.scheme or not parts.netloc:
        return None
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin if is_uri_reference(origin) else None


def required_text(value: Any, *path: str, owner: str = "the object") -> str:
    """The non-empty string at ``path``; TransformError saying ``owner`` has none."""
    found = dig(value, *path)
    if not isinstance(found, str) or not found:
        raise TransformError(f"{owner} has no {'.'.join(path)}")
    return found


def strings(value: Any) -> dict[str, str]:
    """Labels or annotations, keeping only string values."""
    items = value.items() if isinstance(value, dict) else ()
    return {k: v for k, v in items if isinstance(v, str)}


def event_source(event: CloudEvent) -> str:
    """The CloudEvent's ``source``; TransformError if it has none."""
    source = event.get("source")
    if not isinstance(source, str) or not source:
        raise TransformError("the CloudEvent has no source")
    return source


def first_time(event: CloudEvent, *candidates: Any, lacking: str = "status time") -> str:
    """The first candidate that is an RFC 3339 time, else the CloudEvent's time, in UTC."""
    for candidate in (*candidates, event.get("time")):
        if isinstance(candidate, str):
            try:
                return format_rfc3339(parse_rfc3339(candidate))
            except ValueError:
                continue
    raise TransformError(f"the event tells no time (no {lacking} and no CloudEvent time)")


# Not format_rfc3339: it goes through a datetime, which stops at microseconds and writes six
# digits, so Go's RFC3339Nano would lose digits and ".169Z" would become ".169000Z"; where the
# text ends up in ids and subject ids, only the zone may change, never the digits.
def utc_as_sent(value: Any, what: str) -> str:
    """``value`` in UTC, keeping the fraction's digits as sent (trailing zeros dropped)."""
    if not isinstance(value, str):
        raise TransformError(f"{what} is missing")
    try:
        moment = parse_rfc3339(value)
    except ValueError:
        raise TransformError(f"{what} {value!r} is not an RFC 3339 time") from None
    match = _FRACTION.search(value)
    fraction = match.group(1).rstrip("0") if match else ""
    seconds = moment.replace(microsecond=0, tzinfo=None).isoformat()
    return f"{seconds}.{fraction}Z" if fraction else f"{seconds}Z"


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
