"""The shapes every stage passes along: CloudEvents and CDEvents as JSON, and their times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

CloudEvent = dict[str, Any]
"""A CloudEvent in structured JSON form: attributes, extensions and ``data``/``data_base64``."""

CDEvent = dict[str, Any]
"""A CDEvent as JSON: ``context``, ``subject``, optional ``customData``."""

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})\Z"
)


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (any fraction length, e.g. Kubernetes' nanoseconds) to UTC."""
    match = _RFC3339.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if zone in ("Z", "z"):
        tz: timezone = UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    # datetime() rejects month 13, February 30th and the like with ValueError.
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute),
                          min(int(second), 59), micro, tzinfo=tz)
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{value!r} is out of range") from exc


def format_rfc3339(moment: datetime) -> str:
    """UTC, with a ``Z``, seconds precision unless there are microseconds."""
    moment = moment.astimezone(UTC)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")
