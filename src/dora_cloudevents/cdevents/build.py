"""Building CDEvents for transformers: spec 0.4.1 envelopes with deterministic ids."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from dora_cloudevents.cdevents.spec import V04
from dora_cloudevents.events import CDEvent

EMITTED_SPEC_VERSION = "0.4.1"
# Fixed forever: changing it would change every id and break idempotent replays.
_ID_NAMESPACE = uuid.UUID("4f1f8c52-8f7e-4a36-9a0e-3b4d2c9e1d7a")
_TYPES = {f"{event.subject}.{event.predicate}": event for event in V04.events}


def deterministic_id(*parts: str) -> str:
    """A UUID that is always the same for the same parts (re-runs and replays collapse)."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(parts)))


def new_cdevent(
    name: str,
    *,
    key: Sequence[str],
    source: str,
    timestamp: str,
    subject_id: str,
    content: Mapping[str, Any] | None = None,
    subject_source: str | None = None,
    custom_data: Mapping[str, Any] | None = None,
    chain_id: str | None = None,
) -> CDEvent:
    """A CDEvent of type ``name`` (e.g. ``"service.deployed"``) whose id is made from ``key``."""
    event_type = _TYPES[name]
    context: dict[str, Any] = {
        "version": EMITTED_SPEC_VERSION,
        "id": deterministic_id(*key),
        "source": source,
        "type": event_type.type,
        "timestamp": timestamp,
    }
    if chain_id:
        context["chainId"] = chain_id
    subject: dict[str, Any] = {"id": subject_id, "content": dict(content or {})}
    if event_type.subject_type is not None:
        subject["type"] = event_type.subject_type
    if subject_source:
        subject["source"] = subject_source
    event: CDEvent = {"context": context, "subject": subject}
    if custom_data is not None:
        event["customData"] = dict(custom_data)
        event["customDataContentType"] = "application/json"
    return event
