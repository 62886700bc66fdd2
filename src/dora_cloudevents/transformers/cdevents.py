"""CDEvents sent as CloudEvents (``dev.cdevents.*``): passed through exactly as they came."""

from __future__ import annotations

from dora_cloudevents.cdevents import CDEventError, validate_cdevent
from dora_cloudevents.cdevents.binding import binding_problem
from dora_cloudevents.events import CDEvent, CloudEvent
from dora_cloudevents.transformers.base import Transformer, TransformError, json_data

NAME = "cdevents"


def transform(event: CloudEvent) -> list[CDEvent]:
    """The CDEvent the CloudEvent carries, unchanged; TransformError if invalid or misbound."""
    cdevent = json_data(event)
    try:
        validate_cdevent(cdevent)
    except CDEventError as error:
        raise TransformError(f"the data is not a valid CDEvent: {error}") from None
    mismatch = binding_problem(event, cdevent)
    if mismatch:
        raise TransformError(mismatch)
    # Not rebuilt: a native CDEvent keeps its own id, spec version and content.
    return [cdevent]


TRANSFORMERS = [Transformer(NAME, transform, "CDEvents 0.4.x/0.5.x CloudEvents, passed through")]
