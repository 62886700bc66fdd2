"""Validate CDEvents 0.4.x / 0.5.x JSON events with plain checks over the tables in `spec`."""

from __future__ import annotations

import ipaddress
import re
from calendar import monthrange
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from dora_cloudevents.cdevents.spec import (
    FAMILIES,
    EventType,
    Field,
    Format,
    LinkArray,
    Obj,
    SpecFamily,
    Str,
    StrArray,
    event_schema,
)


class CDEventError(ValueError):
    """The event breaks its CDEvents schema; `path` is the offending value's JSON path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or '(event)'}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True, slots=True)
class CDEventInfo:
    """What a valid event is: its spec version and the parts of its `context.type`."""

    spec_version: str  # as the event gives it, e.g. "0.4.1"
    type: str  # e.g. "dev.cdevents.service.deployed.0.2.0"
    subject: str  # e.g. "service", "pipelinerun"
    predicate: str  # e.g. "deployed"
    type_version: str  # e.g. "0.2.0"


class _Invalid(Exception):
    """Raised deep in the walk; each level adds its key on the way out: valid events pay nothing."""

    def __init__(self, problem: str, *path: str | int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.reversed_path: list[str | int] = list(reversed(path))


# --- formats -------------------------------------------------------------------------------------

_DATE_TIME = re.compile(
    r"([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)


def _is_date_time(text: str) -> bool:
    """RFC 3339 date-time; like jsonschema's checker it refuses year 0 and leap seconds (:60)."""
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        return False
    year, month, day = match.group(1, 2, 3)
    # Two-digit strings compare like their numbers; only days 29-31 need the calendar.
    return year != "0000" and (day <= "28" or int(day) <= monthrange(int(year), int(month))[1])


# RFC 3986 appendix A. Two liberties keep the regexes to fast character-class runs:
# "%" sits in the classes and _MALFORMED_PERCENT then checks each is followed by two hex
# digits, and "[...]" IP literals are only roughly matched, then checked with ipaddress.
_UNRESERVED_SUB_DELIM_PCT = r"A-Za-z0-9\-._~!$&'()*+,;=%"
_PCHAR = rf"[{_UNRESERVED_SUB_DELIM_PCT}:@]"
_QUERY_OR_FRAGMENT = rf"[{_UNRESERVED_SUB_DELIM_PCT}:@/?]*"
_AUTHORITY = (
    rf"(?:[{_UNRESERVED_SUB_DELIM_PCT}:]*@)?"  # userinfo
    r"(?:\[[0-9A-Fa-f:.]+\]|\[[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+\]"  # IP literal
    rf"|[{_UNRESERVED_SUB_DELIM_PCT}]*)"  # IPv4 address or registered name
    r"(?::[0-9]*)?"  # port
)
_PATH_ABEMPTY = rf"(?:/{_PCHAR}*)*"
_PATH_ABSOLUTE = rf"/(?:{_PCHAR}+{_PATH_ABEMPTY})?"
_PATH_ROOTLESS = rf"{_PCHAR}+{_PATH_ABEMPTY}"
_PATH_NOSCHEME = rf"[{_UNRESERVED_SUB_DELIM_PCT}@]+{_PATH_ABEMPTY}"  # no ":" before the first "/"
_QUERY_AND_FRAGMENT = rf"(?:\?{_QUERY_OR_FRAGMENT})?(?:#{_QUERY_OR_FRAGMENT})?"
_URI = (
    r"[A-Za-z][A-Za-z0-9+.\-]*:"
    rf"(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_ROOTLESS}|)"
    rf"{_QUERY_AND_FRAGMENT}"
)
_RELATIVE_REF = (
    rf"(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_NOSCHEME}|){_QUERY_AND_FRAGMENT}"
)
_URI_PATTERN = re.compile(_URI)
_URI_REFERENCE_PATTERN = re.compile(rf"{_URI}|{_RELATIVE_REF}")
_MALFORMED_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _has_valid_escapes_and_ip(text: str) -> bool:
    if "%" in text and _MALFORMED_PERCENT.search(text):
        return False
    if "[" not in text:
        return True
    literal = text[text.index("[") + 1 : text.index("]")]
    if literal[0] in "vV":  # IPvFuture: the regex has checked all there is to check
        return True
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        return False
    return True


def _is_uri(text: str) -> bool:
    return _URI_PATTERN.fullmatch(text) is not None and _has_valid_escapes_and_ip(text)


def is_uri_reference(text: str) -> bool:
    """Whether ``text`` is an RFC 3986 URI reference (what a CloudEvent's source must be)."""
    return _URI_REFERENCE_PATTERN.fullmatch(text) is not None and _has_valid_escapes_and_ip(text)


_FORMAT_CHECKS: Mapping[Format, Callable[[str], bool]] = {
    "date-time": _is_date_time,
    "uri": _is_uri,
    "uri-reference": is_uri_reference,
}
_FORMAT_NAMES: Mapping[Format, str] = {
    "date-time": "RFC 3339 date-time (e.g. 2024-05-01T12:00:00Z)",
    "uri": "absolute URI (RFC 3986, with a scheme)",
    "uri-reference": "URI reference (RFC 3986)",
}


# --- the walk ------------------------------------------------------------------------------------

def _json_type(value: object) -> str:
    # bool before int: JSON booleans are not numbers, though Python's bool is an int.
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if value is None:
        return "null"
    return f"non-JSON {type(value).__name__}"


def _preview(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _wrong_type(expected: str, value: object, *path: str | int) -> _Invalid:
    return _Invalid(f"expected {expected}, got {_json_type(value)}", *path)


def _check_str(value: object, field: Str) -> None:
    if not isinstance(value, str):
        raise _wrong_type("string", value)
    if len(value) < field.min_length:
        raise _Invalid("must not be empty")
    if field.enum is not None and value not in field.enum:
        allowed = ", ".join(repr(option) for option in sorted(field.enum))
        raise _Invalid(f"{_preview(value)} is not one of {allowed}")
    if field.format is not None and not _FORMAT_CHECKS[field.format](value):
        raise _Invalid(f"{_preview(value)} is not a valid {_FORMAT_NAMES[field.format]}")


def _check_object(value: object, spec: Obj) -> None:
    if not isinstance(value, dict):
        raise _wrong_type("object", value)
    for name in spec.required:
        if name not in value:
            raise _Invalid("required property missing", name)
    fields = spec.fields
    for name, item in value.items():
        field = fields.get(name)
        if field is None:
            if spec.closed:
                raise _Invalid("additional property not allowed", name)
            continue
        try:
            _check(item, field)
        except _Invalid as error:
            error.reversed_path.append(name)
            raise


def _check_links(value: object, spec: LinkArray) -> None:
    if not isinstance(value, list):
        raise _wrong_type("array", value)
    for index, link in enumerate(value):
        try:
            _check_link(link, spec)
        except _Invalid as error:
            error.reversed_path.append(index)
            raise


def _check_link(link: object, spec: LinkArray) -> None:
    # The schema's anyOf branches each pin linkType to one value, so linkType picks the branch.
    if not isinstance(link, dict):
        raise _wrong_type("object", link)
    if "linkType" not in link:
        raise _Invalid("required property missing", "linkType")
    link_type = link["linkType"]
    if not isinstance(link_type, str):
        raise _wrong_type("string", link_type, "linkType")
    variant = spec.variants.get(link_type)
    if variant is None:
        allowed = ", ".join(repr(name) for name in spec.variants)
        raise _Invalid(f"{_preview(link_type)} is not one of {allowed}", "linkType")
    _check_object(link, variant)


def _check(value: object, field: Field) -> None:
    # Ordered by how often each kind occurs in real events.
    if isinstance(field, Str):
        _check_str(value, field)
    elif isinstance(field, Obj):
        _check_object(value, field)
    elif isinstance(field, LinkArray):
        _check_links(value, field)
    elif isinstance(field, StrArray):
        if not isinstance(value, list):
            raise _wrong_type("array", value)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise _wrong_type("string", item, index)
    elif _json_type(value) not in field.json_types:
        raise _wrong_type(" or ".join(field.json_types), value)


# --- entry point ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Family:
    spec: SpecFamily
    version_pattern: re.Pattern[str]
    schemas: Mapping[str, tuple[EventType, Obj]]  # by full type string


def _build_family(spec: SpecFamily) -> _Family:
    pattern = re.compile(re.escape(spec.minor) + r"\.[0-9]+")
    schemas = {event.type: (event, event_schema(spec, event)) for event in spec.events}
    return _Family(spec, pattern, schemas)


_FAMILIES = {family.version_field: _build_family(family) for family in FAMILIES}
_MINOR_OF_TYPE = {event.type: family.minor for family in FAMILIES for event in family.events}
SUPPORTED_TYPES: frozenset[str] = frozenset(_MINOR_OF_TYPE)


def _family_of(context: dict[str, object]) -> tuple[_Family, str]:
    """The spec family and version, from whichever of `version`/`specversion` the context has."""
    present = [family for field, family in _FAMILIES.items() if field in context]
    if not present:
        raise _Invalid("required property missing (0.4.x events carry context.version instead)",
                       "context", "specversion")
    if len(present) > 1:
        raise _Invalid("additional property not allowed (0.5.x events use context.specversion)",
                       "context", "version")
    family = present[0]
    field = family.spec.version_field
    version = context[field]
    if not isinstance(version, str):
        raise _wrong_type("string", version, "context", field)
    if family.version_pattern.fullmatch(version) is None:
        raise _Invalid(
            f"unsupported CDEvents spec version {_preview(version)}, expected "
            f"{family.spec.minor}.<patch> here (0.4.x events use context.version, "
            "0.5.x context.specversion)",
            "context", field,
        )
    return family, version


def _event_type_of(context: dict[str, object], family: _Family, version: str) -> str:
    if "type" not in context:
        raise _Invalid("required property missing", "context", "type")
    type_ = context["type"]
    if not isinstance(type_, str):
        raise _wrong_type("string", type_, "context", "type")
    if type_ not in family.schemas:
        other_minor = _MINOR_OF_TYPE.get(type_)
        problem = (
            f"{_preview(type_)} is a CDEvents {other_minor}.x type, not valid in a {version} event"
            if other_minor
            else f"unknown CDEvent type {_preview(type_)} for CDEvents {family.spec.minor}.x"
        )
        raise _Invalid(problem, "context", "type")
    return type_


def _validate(event: object) -> CDEventInfo:
    if not isinstance(event, dict):
        raise _wrong_type("object", event)
    if "context" not in event:
        raise _Invalid("required property missing", "context")
    context = event["context"]
    if not isinstance(context, dict):
        raise _wrong_type("object", context, "context")
    family, version = _family_of(context)
    type_ = _event_type_of(context, family, version)
    _check_object(event, family.schemas[type_][1])
    return _info(family.spec.version_field, version, type_)


# Building a frozen dataclass costs about a microsecond, a tenth of a whole validation.
@lru_cache(maxsize=256)
def _info(version_field: str, version: str, type_: str) -> CDEventInfo:
    event_type = _FAMILIES[version_field].schemas[type_][0]
    return CDEventInfo(version, type_, event_type.subject, event_type.predicate, event_type.version)


def _format_path(reversed_path: list[str | int]) -> str:
    path = reversed(reversed_path)
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)[1:]


def validate_cdevent(event: object) -> CDEventInfo:
    """Check a parsed JSON event against its CDEvents 0.4.x/0.5.x schema; raise CDEventError."""
    try:
        return _validate(event)
    except _Invalid as error:
        raise CDEventError(_format_path(error.reversed_path), error.problem) from None
