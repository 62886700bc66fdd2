"""The CloudEvents HTTP binding (binary, structured, batched; 1.0 and 0.3) and attribute checks.

The events are kept exactly as sent (attribute values, time precision, extensions), which is
why this is not the ``cloudevents`` SDK: it turns ``time`` into a ``datetime`` and loses the
nanoseconds Kubernetes sends, and it has no batch mode.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn
from urllib.parse import unquote

import orjson

from dora_cloudevents.events import CloudEvent, parse_rfc3339
from dora_cloudevents.problems import Problem

if TYPE_CHECKING:
    from dora_cloudevents.config import Settings

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
SPEC_VERSIONS = ("1.0", "0.3")
REQUIRED = ("id", "source", "type")
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]{1,64}\Z")
_STRING_ATTRIBUTES = frozenset({"id", "source", "type", "subject", "datacontenttype",
                                "dataschema", "schemaurl", "datacontentencoding", "time"})
_PAYLOAD_KEYS = frozenset({"specversion", "data", "data_base64"})
_INT32 = (-(2**31), 2**31 - 1)


DEFAULT_MAX_JSON_DEPTH = 64


class Limits:
    """Bounds on one request's events (body size is checked before parsing)."""

    def __init__(self, max_batch_events: int = 1000, max_extensions: int = 64,
                 max_json_depth: int = DEFAULT_MAX_JSON_DEPTH) -> None:
        self.max_batch_events = max_batch_events
        self.max_extensions = max_extensions
        self.max_json_depth = max_json_depth

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(max_batch_events=settings.max_batch_events,
                   max_extensions=settings.max_extension_attributes,
                   max_json_depth=settings.max_json_depth)


_DEFAULT_LIMITS = Limits()


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_media_type(media: str) -> bool:
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def _bad(detail: str) -> Problem:
    return Problem(400, detail)


def load_json(body: bytes, what: str, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Any:
    """The parsed body; 400 if it is not JSON, nests deeper than ``max_depth`` or holds U+0000."""
    return check_document(body, _parse(body, what), what, max_depth)


def _parse(body: bytes, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"{what} is not valid JSON: {exc}") from exc


def check_document(body: bytes, document: Any, what: str, max_depth: int) -> Any:
    """``document`` (parsed from ``body``) if it can be stored; else a 400 naming the fault."""
    # Both checks start with a scan of the bytes in C; the walk in Python is only for
    # bodies that might break the rule (most single events cannot: too few brackets).
    if _may_nest_deeper(body, max_depth) and _nests_deeper(document, max_depth):
        _too_deep(what, max_depth)
    _check_nul(body, document, what)
    return document


def _may_nest_deeper(body: bytes, limit: int) -> bool:
    return body.count(b"{") + body.count(b"[") > limit


def _too_deep(what: str, limit: int) -> NoReturn:
    raise _bad(f"{what} nests JSON objects and arrays more than {limit} levels deep (the "
               "max_json_depth setting)")


def _check_nul(body: bytes, document: Any, what: str) -> None:
    # JSON spells U+0000 only as the escape \u0000. Most bodies hold no backslash at all,
    # which one memchr() tells at a quarter of the cost of searching for the escape.
    if body.find(b"\\") >= 0 and b"\\u0000" in body and _holds_nul(document):
        raise _bad(f"{what} has a string with the character U+0000 (\\u0000), which cannot be "
                   "stored; remove it or encode the data (data_base64)")


def _nests_deeper(document: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels (a scalar is level 0)."""
    level = [document]  # the values at one nesting level, starting with the document's
    for _ in range(limit):
        inner: list[Any] = []
        for node in level:
            if node.__class__ is dict:
                inner.extend(node.values())
            elif node.__class__ is list:
                inner.extend(node)
        if not inner:
            return False
        level = inner
    # A container this far down is one level too many.
    return any(node.__class__ is dict or node.__class__ is list for node in level)


def _holds_nul(document: Any) -> bool:
    """Whether a string (or object key) anywhere in ``document`` contains U+0000."""
    stack = [document]
    while stack:
        node = stack.pop()
        if node.__class__ is str:
            if "\x00" in node:
                return True
        elif node.__class__ is dict:
            stack.extend(node)
            stack.extend(node.values())
        elif node.__class__ is list:
            stack.extend(node)
    return False


def check_attributes(event: Any, where: str = "event", limits: Limits | None = None) -> CloudEvent:
    """Check one structured-mode CloudEvent; raise a 400 Problem naming the first fault."""
    if not isinstance(event, dict):
        raise _bad(f"{where} must be a JSON object, got {type(event).__name__}")
    version = event.get("specversion")
    if version is None:
        raise _bad(f"{where}: required attribute 'specversion' is missing")
    if version not in SPEC_VERSIONS:
        raise _bad(f"{where}: unsupported specversion {version!r}; expected one of "
                   + ", ".join(SPEC_VERSIONS))
    for name in REQUIRED:
        value = event.get(name)
        if value is None:
            raise _bad(f"{where}: required attribute {name!r} is missing")
    extensions = 0
    for name, value in event.items():
        if name in _STRING_ATTRIBUTES:
            if value.__class__ is not str or (not value and name in REQUIRED):
                raise _bad(f"{where}: attribute {name!r} must be a non-empty string")
        elif name not in _PAYLOAD_KEYS:
            if not _ATTRIBUTE_NAME.match(name):
                raise _bad(f"{where}: attribute name {name!r} is invalid; names are "
                           "lower-case letters and digits")
            extensions += 1
            _check_extension_value(where, name, value)
    if limits is not None and extensions > limits.max_extensions:
        raise _bad(f"{where}: {extensions} extension attributes; at most "
                   f"{limits.max_extensions} are accepted (the max_extension_attributes setting)")
    time = event.get("time")
    if time is not None and not is_rfc3339(time):
        raise _bad(f"{where}: attribute 'time' must be an RFC 3339 timestamp, got "
                   f"{time!r}")
    if "data_base64" in event:
        if "data" in event:
            raise _bad(f"{where}: only one of 'data' and 'data_base64' may be present")
        _check_base64(where, event["data_base64"])
    return event


# The usual shape of a timestamp, every value of which parse_rfc3339 accepts: ASCII digits,
# "T" and "Z", day 01-28 (valid in every month), no leap second, offset under 24 h; years
# 1000-9998 (checked apart) cannot leave datetime's range when moved to UTC. Anything else
# is left to parse_rfc3339 itself, so both accept exactly the same strings.
_USUAL_TIME = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])T(?:[01][0-9]|2[0-3]):[0-5][0-9]"
    r":[0-5][0-9](?:\.[0-9]+)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\Z"
)


def is_rfc3339(value: str) -> bool:
    """Whether ``parse_rfc3339`` accepts ``value``, at a fifth of its cost for usual values."""
    if "1000" <= value[:4] <= "9998" and _USUAL_TIME.match(value):
        return True
    try:
        parse_rfc3339(value)
    except ValueError:
        return False
    return True


def _check_extension_value(where: str, name: str, value: Any) -> None:
    if isinstance(value, bool | str):
        return
    if isinstance(value, int) and _INT32[0] <= value <= _INT32[1]:
        return
    raise _bad(f"{where}: extension attribute {name!r} must be a string, boolean or 32-bit "
               f"integer, got {type(value).__name__}")


def _check_base64(where: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _bad(f"{where}: 'data_base64' must be a base64 string")
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        raise _bad(f"{where}: 'data_base64' is not valid base64") from None


def _binary_data(body: bytes, media: str, max_depth: int) -> dict[str, Any]:
    if not body:
        return {}
    if is_json_media_type(media):
        return {"data": load_json(body, "the body (datacontenttype is JSON)", max_depth)}
    if not media:
        # No Content-Type: the CloudEvents JSON format implies application/json, which is
        # what SDKs rely on; fall back to bytes when the body is not JSON after all.
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            return {"data": check_document(body, document, "the body", max_depth)}
    if media.startswith("text/"):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if "\x00" in text:
                raise _bad("the text body has the character U+0000, which cannot be stored as "
                           "text; send it as application/octet-stream (stored as base64)")
            return {"data": text}
    return {"data_base64": base64.b64encode(body).decode("ascii")}


def _from_binary(headers: Mapping[str, str], body: bytes, limits: Limits) -> CloudEvent:
    event: CloudEvent = {}
    for key, value in headers.items():
        key = key.lower()
        if key.startswith("ce-") and len(key) > 3:
            event[key[3:]] = unquote(value)
            if "\x00" in event[key[3:]]:
                raise _bad(f"header {key} decodes to a value with the character U+0000 (%00), "
                           "which cannot be stored")
    content_type = headers.get("content-type")
    if content_type:
        event["datacontenttype"] = content_type
    event.update(_binary_data(body, media_type(content_type), limits.max_json_depth))
    return event


class HttpEvents(NamedTuple):
    """The CloudEvents one HTTP request carries. In structured mode the body is the event
    in JSON: ``text`` is that body, stored as sent. (Serializing the parsed event again
    cost ~0.3 µs per event and lost digits a float cannot hold.)"""

    events: list[CloudEvent]
    text: str | None = None


def parse_http(
    headers: Mapping[str, str], body: bytes, limits: Limits | None = None
) -> HttpEvents:
    """The CloudEvents carried by one HTTP request, in any of the three modes."""
    limits = limits or _DEFAULT_LIMITS
    media = media_type(headers.get("content-type"))
    if media == BATCH:
        return HttpEvents(_parse_batch(body, limits))
    if media == STRUCTURED:
        return _structured(body, check_attributes(
            load_json(body, "the structured CloudEvent", limits.max_json_depth), limits=limits))
    if "ce-specversion" in headers:
        return HttpEvents([check_attributes(_from_binary(headers, body, limits), limits=limits)])
    if media == "application/json":
        # Not the binding to the letter, but what curl users send: a structured event
        # labelled application/json. Accept it only if it is recognisably a CloudEvent.
        payload = load_json(body, "the body", limits.max_json_depth)
        if isinstance(payload, dict) and "specversion" in payload:
            return _structured(body, check_attributes(payload, limits=limits))
        raise _bad("no CloudEvent found: send ce-* headers (binary mode) or a JSON object with "
                   "'specversion' (structured mode)")
    raise Problem(415, f"unsupported content type {media or '(none)'!r}: send binary mode "
                  f"(ce-* headers), {STRUCTURED} or {BATCH}")


def _structured(body: bytes, event: CloudEvent) -> HttpEvents:
    # The body parsed as JSON, so it is UTF-8.
    return HttpEvents([event], body.decode())


def _parse_batch(body: bytes, limits: Limits) -> list[CloudEvent]:
    events = _parse(body, "the batch")
    if not isinstance(events, list):
        raise _bad(f"a batch must be a JSON array of CloudEvents, got {type(events).__name__}")
    if len(events) > limits.max_batch_events:
        raise Problem(413, f"the batch has {len(events)} events; at most "
                      f"{limits.max_batch_events} are accepted per request (the "
                      "max_batch_events setting)")
    limit = limits.max_json_depth
    # In an event that passes check_attributes only `data` can hold objects or arrays, so
    # the batch nests as deep as the list of its events' data: walking only that is a
    # third cheaper per event, and any other deep value is refused by check_attributes.
    # (No byte count first: a batch of a few dozen events has more brackets than the limit
    # anyway, and counting them cost more than the walk.)
    if _nests_deeper(
            [event.get("data") if event.__class__ is dict else event for event in events],
            limit - 1):
        _too_deep("the batch", limit)
    _check_nul(body, events, "the batch")
    return [check_attributes(event, f"event [{index}]", limits)
            for index, event in enumerate(events)]
