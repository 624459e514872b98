"""Input no view can store or look up is refused at the door, with a 400 page that says why.

PostgreSQL refuses text holding a NUL byte and SQLite cannot bind an integer beyond 64 bits; each such value that
reached a form or a query was a server error. Rather than guard every view, this middleware answers such requests
itself: NUL bytes or bytes that are not UTF-8 in the path, the query string or a form; a query string or form larger
than ``DATA_UPLOAD_MAX_MEMORY_SIZE``; a form Django cannot parse; a whole number Python cannot read; and an id in the
path beyond the 64-bit range of the database's keys (404, as for any id that names no row).

A number can still be too large for the column or key it is compared with or stored in, deep in a form or a filter.
Refusing long numbers at the door would refuse real values too (a 25-digit customer number is text), so the
database's own verdict is used instead: SQLite's driver cannot bind it (OverflowError), PostgreSQL reports
"numeric value out of range" (SQLSTATE 22003). Either becomes the same 400, logged as a warning with its traceback.

Under the paths of ``ERPSYNC_JSON_PATHS`` (the automation API) the answers are JSON, ``{"code", "message"}``, as
every other answer there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template.loader import render_to_string
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# The widest integer column of either database (bigint), and so of every id.
SMALLEST_ID = -(2**63)
LARGEST_ID = 2**63 - 1
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
NUMERIC_VALUE_OUT_OF_RANGE = "22003"  # PostgreSQL's SQLSTATE
logger = logging.getLogger(__name__)

NUL = _("It contains a NUL character, which no field can hold.")
NOT_UTF8 = _("It contains bytes that are not UTF-8 text.")
TOO_BIG = _("It sends more data than the server accepts.")
TOO_MANY_FIELDS = _("It sends more fields than the server accepts.")
MALFORMED = _("Its form data is malformed.")
UNREADABLE_NUMBER = _("It contains a number too long to read.")
OUT_OF_RANGE = _("It contains a number larger than the database can hold.")
NOT_FOUND = _("There is no such object, or you may not see it.")


class RefuseMalformedInput:
    """Answers 400 for a request whose path, query string or form holds what no view can use; see the module."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = malformed(request)
        if problem is not None:
            return refusal(request, problem)
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view: Callable[..., HttpResponse],
        args: tuple[object, ...],
        kwargs: dict[str, object],
    ) -> HttpResponse | None:
        # An <int:> argument takes any run of digits; one beyond 64 bits names no row, and some ids travel on into
        # raw SQL or task arguments where they would fail instead of matching nothing.
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and not SMALLEST_ID <= value <= LARGEST_ID:
                if wants_json(request):
                    return JsonResponse({"code": "not_found", "message": str(NOT_FOUND)}, status=404)
                raise Http404
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OverflowError) or (
            isinstance(exception, DataError)
            and getattr(exception.__cause__, "sqlstate", None) == NUMERIC_VALUE_OUT_OF_RANGE
        ):
            logger.warning(
                "%s %s: a number out of the database's range", request.method, request.path, exc_info=exception
            )
            return refusal(request, OUT_OF_RANGE)
        return None


def malformed(request: HttpRequest) -> Promise | None:
    """What is wrong with the request's path, query string or form, or None."""
    if len(request.META.get("QUERY_STRING", "")) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        # Django bounds form bodies but not query strings; without a proxy's limit in front, 10 MB would be parsed.
        return TOO_BIG
    path = _raw(request, "PATH_INFO")
    query = _raw(request, "QUERY_STRING")
    if path is None or query is None:
        return NOT_UTF8
    problem = _check_raw(path, percent_encoded=False) or _check_raw(query, percent_encoded=True)
    if problem is not None:
        return problem
    if request.method in {"POST", "PUT", "PATCH"} and request.content_type in FORM_TYPES:
        return _form_problem(request)
    return _values_problem(request.GET.lists())


def _raw(request: HttpRequest, key: str) -> bytes | None:
    """A WSGI string as the bytes the client sent (WSGI carries them as latin-1), or None if it cannot be."""
    try:
        return str(request.META.get(key, "")).encode("iso-8859-1")
    except UnicodeEncodeError:
        return None


def _check_raw(raw: bytes, *, percent_encoded: bool) -> Promise | None:
    text = unquote_to_bytes(raw.replace(b"+", b" ")) if percent_encoded else raw
    if b"\x00" in text:
        return NUL
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return NOT_UTF8
    return None


def _form_problem(request: HttpRequest) -> Promise | None:
    try:
        if request.content_type == "application/x-www-form-urlencoded":
            # The body's bytes, read once and kept by Django for request.POST.
            problem = _check_raw(request.body, percent_encoded=True)
            if problem is not None:
                return problem
        fields = request.POST
    except RequestDataTooBig:
        return TOO_BIG
    except TooManyFieldsSent:
        return TOO_MANY_FIELDS
    except MultiPartParserError:
        return MALFORMED
    names = [upload.name or "" for _field, uploads in request.FILES.lists() for upload in uploads]
    return _values_problem([*request.GET.lists(), *fields.lists(), ("", names)])


def _values_problem(items: Iterable[tuple[str, list[str]]]) -> Promise | None:
    for key, values in items:
        for value in (key, *values):
            if "\x00" in value:
                return NUL
            # Views read ids as `int(raw) if raw.isdigit()`; isdigit() also accepts what int() cannot read:
            # superscripts, and more digits than Python converts (4,300 by default).
            if value.isdigit() and not _readable_number(value):
                return UNREADABLE_NUMBER
    return None


def _readable_number(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(tuple(getattr(settings, "ERPSYNC_JSON_PATHS", ())))


def refusal(request: HttpRequest, problem: Promise) -> HttpResponse:
    """The 400 answer: the reason in the user's language, as a fragment for htmx and a page otherwise (JSON under
    ``ERPSYNC_JSON_PATHS``)."""
    if wants_json(request):
        message = _("The request is not valid: %(problem)s") % {"problem": problem}
        return JsonResponse({"code": "invalid", "message": str(message)}, status=400)
    template = "includes/_bad_request.html" if request.headers.get("HX-Request") == "true" else "400.html"
    return HttpResponseBadRequest(render_to_string(template, {"problem": problem}, request=request))
