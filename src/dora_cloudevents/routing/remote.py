"""Remote transformers: an HTTP function that answers a CloudEvent with a batch of CDEvents."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from dora_cloudevents.events import CDEvent, CloudEvent
from dora_cloudevents.transformers.base import TransformError

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
# A 4xx other than these means the function rejects this event: retrying will not help.
_RETRYABLE_STATUS = frozenset({408, 425, 429})


def cdevents_from_batch(body: Any, origin: str) -> list[CDEvent]:
    """CDEvents from a batch answer: CloudEvents carrying CDEvents, or bare CDEvents."""
    if not isinstance(body, list):
        raise TransformError(f"{origin} answered {type(body).__name__}, not a JSON array")
    found = []
    for index, item in enumerate(body):
        cdevent = item.get("data") if isinstance(item, dict) and "specversion" in item else item
        if not isinstance(cdevent, dict) or "context" not in cdevent:
            raise TransformError(f"{origin}: item {index} of the answer is not a CDEvent")
        found.append(cdevent)
    return found


class RemoteTransformer:
    """POSTs the event (structured mode); retries timeouts and 5xx with exponential backoff."""

    def __init__(self, url: str, *, timeout: float = 10.0, attempts: int = 3,
                 backoff: float = 0.5, client: httpx.Client | None = None) -> None:
        self.name = url
        self.url = url
        self.attempts = attempts
        self.backoff = backoff
        self._client = client or httpx.Client(timeout=timeout)

    def __call__(self, event: CloudEvent) -> list[CDEvent]:
        problem = "no attempt made"
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._client.post(self.url, content=orjson.dumps(event),
                                             headers={"content-type": STRUCTURED})
            except httpx.TimeoutException:
                problem = "timed out"
                continue
            except httpx.TransportError as error:
                problem = f"could not be reached ({error.__class__.__name__})"
                continue
            if response.status_code == 200:
                return self._parse(response)
            problem = f"answered {response.status_code}: {response.text[:200]}"
            if response.status_code < 500 and response.status_code not in _RETRYABLE_STATUS:
                raise TransformError(f"remote transformer {self.url} {problem}")
        raise TransformError(
            f"remote transformer {self.url} {problem} (after {self.attempts} attempts)")

    def _parse(self, response: httpx.Response) -> list[CDEvent]:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise TransformError(f"remote transformer {self.url} answered invalid JSON") from None
        return cdevents_from_batch(body, f"remote transformer {self.url}")

    def close(self) -> None:
        self._client.close()
