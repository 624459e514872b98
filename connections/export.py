"""CSV downloads that stream: rows are read from a database cursor and sent as they come, so a download of
a million rows costs the web process no more memory than one of ten.

The files are made for Excel as well as for scripts: UTF-8 with a byte order mark (without it Excel reads
å, ä and ö as two characters each), and the list separator Excel expects for the user's language: ";" in
Swedish (Swedish Windows uses the decimal comma, so its list separator is ";"), "," otherwise (RFC 4180).
Text that Excel would run as a formula is defused with a leading apostrophe.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, tzinfo
from typing import Any

from django.db import connection, transaction
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import slugify

BOM = "\ufeff"
# Rows written and sent at a time (some 75 KB of the sync log): one write per piece instead of one per row.
ROWS_PER_CHUNK = 500
FORMULA_START = re.compile(r"^\s*[=+\-@]|^[\t\r]")
PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")
# What a formula can start with, white space included: one set look-up spares nearly every cell the expressions.
SUSPECT_FIRST = frozenset("=+-@") | frozenset(chr(code) for code in range(0x3001) if chr(code).isspace())


def neutralise(value: Any) -> Any:
    """Text a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``, a tab or a carriage return first)
    gets a leading apostrophe, so ERP or CRM data such as ``=HYPERLINK(...)`` shows as text and never runs.

    A plain number such as ``-12.5`` is left alone: it cannot call anything, and amounts stay readable."""
    if isinstance(value, str) and value[:1] in SUSPECT_FIRST and FORMULA_START.match(value):
        return value if PLAIN_NUMBER.match(value) else "'" + value
    return value


def delimiter_for(language: str) -> str:
    """The list separator Excel uses where the language is spoken: ";" for Swedish, "," otherwise."""
    return ";" if language.split("-")[0] == "sv" else ","


def local_time(value: datetime | None, zone: tzinfo) -> str:
    """A moment in ``zone`` (the site's time zone), to the second, as Excel reads a date and time in any locale:
    ``2026-03-01 14:05:09``."""
    return "" if value is None else value.astimezone(zone).replace(tzinfo=None, microsecond=0).isoformat(" ")


def filename(prefix: str, name: str, fallback: str) -> str:
    """``<prefix>-<the connection's name as a slug>-<today>.csv``; ``fallback`` when the name has no letters."""
    return f"{prefix}-{slugify(name) or fallback}-{timezone.localdate():%Y-%m-%d}.csv"


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[Any]], delimiter: str) -> Iterator[bytes]:
    """The CSV file, BOM and header first, as UTF-8 pieces of ``ROWS_PER_CHUNK`` rows, each value neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    out.write(BOM)
    writer.writerow(header)
    # This runs for every cell of every row: the set look-up is inlined, and writerows stays in C.
    safe = ([neutralise(v) if v.__class__ is str and v[:1] in SUSPECT_FIRST else v for v in row] for row in rows)
    while batch := list(itertools.islice(safe, ROWS_PER_CHUNK)):
        writer.writerows(batch)
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()
    if out.tell():  # no rows at all: the header alone
        yield out.getvalue().encode()


@contextlib.contextmanager
def read_snapshot() -> Iterator[None]:
    """Where the rows are read: in one transaction on PostgreSQL, none on SQLite.

    On PostgreSQL ``.iterator()`` reads through a server-side cursor; outside a transaction that cursor is
    WITH HOLD, which makes PostgreSQL compute and store the whole result before the first row arrives. Inside
    one, rows come as they are found, from one snapshot. On SQLite a transaction takes the write lock
    (``IMMEDIATE``) and would hold up every worker for the whole download; in WAL mode a single SELECT reads
    one snapshot anyway."""
    if connection.vendor == "postgresql":
        with transaction.atomic():
            yield
    else:
        yield


def streaming_csv(
    name: str, header: Sequence[str], rows: Iterable[Sequence[Any]], delimiter: str
) -> StreamingHttpResponse:
    """A download of ``rows`` as CSV named ``name``. ``header`` must be translated before the call: the rows are
    written while the response is sent, after the view (and its language) has returned."""

    def body() -> Iterator[bytes]:
        with read_snapshot():
            yield from csv_chunks(header, rows, delimiter)

    response = StreamingHttpResponse(body(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name) or "attachment"
    # A download of the current data: neither the browser nor a proxy should keep it.
    response["Cache-Control"] = "no-store"
    return response
