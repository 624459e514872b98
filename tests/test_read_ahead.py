"""read_ahead: the next item is read while the caller works on the current one; order, the end and errors are kept."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from core.iterators import read_ahead


def test_pages_come_in_order_and_the_next_is_read_while_the_caller_works() -> None:
    read = {number: threading.Event() for number in range(4)}
    threads = set()

    def pages() -> Iterator[int]:
        for number in range(4):
            threads.add(threading.current_thread().name)
            read[number].set()
            yield number

    seen = []
    for page in read_ahead(pages()):
        if page + 1 in read:
            # While this page is worked on, the next one is read: read in turn, this wait could never end.
            assert read[page + 1].wait(10), f"page {page + 1} was not read while page {page} was worked on"
        seen.append(page)
    assert seen == [0, 1, 2, 3]
    assert all(name.startswith("read-ahead") for name in threads)


def test_an_error_while_reading_is_raised_where_the_page_would_have_come() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise ConnectionError("the connector went away")

    pages = read_ahead(failing())
    assert next(pages) == 1
    with pytest.raises(ConnectionError, match="went away"):
        next(pages)


def test_nothing_to_read_ends_at_once() -> None:
    assert list(read_ahead(iter([]))) == []
