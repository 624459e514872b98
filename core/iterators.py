"""Iterating over what is slow to read."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_END = object()


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """Yield ``items`` while the next one is read in a thread of its own: the caller works on one page while the
    next one travels. ``items`` is advanced in that thread only, one step at a time, so it needs no locking; what it
    raises is raised here, where the item would have come."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        coming = pool.submit(next, items, _END)
        while True:
            item = coming.result()
            if item is _END:
                return
            coming = pool.submit(next, items, _END)
            yield item  # type: ignore[misc]
