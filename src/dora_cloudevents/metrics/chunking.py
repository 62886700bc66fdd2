"""Splitting key lists into IN lists of a size both databases compile and run quickly."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

CHUNK = 500


def grouped(pairs: Iterable[tuple[str, str]]) -> Iterator[tuple[str, list[str]]]:
    """(first, chunk of seconds) for pairs: plain ``IN`` lists per first value compile and
    run much faster than row-value ``IN`` lists."""
    by_first: dict[str, set[str]] = {}
    for first, second in pairs:
        by_first.setdefault(first, set()).add(second)
    for first, seconds in sorted(by_first.items()):
        for chunk in chunks(sorted(seconds)):
            yield first, chunk


def chunks(keys: Sequence[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for begin in range(0, len(keys), size):
        yield list(keys[begin:begin + size])
