"""Hostile input gets 400 or 404 with a message, never a server error, on every URL of the URL table.

An administrator (who passes every permission check, so the input reaches the forms and look-ups behind each URL)
sends NUL bytes, invalid UTF-8, integers beyond any database column, negative ids and 10 MB values: in the query
string, in POST bodies and in the path's own arguments. The field names are the ones the app's pages put in their
forms and htmx attributes, so each value lands where a view reads it. A property-based test (hypothesis) then mixes
hostile values into otherwise valid forms, one URL at a time.

Every request runs in a savepoint that is rolled back, so each one meets the same world, and a database error in one
(PostgreSQL refuses NUL in text and overflows bigint) cannot spoil the next.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

import pytest
from django.db import transaction
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.middleware import RefuseMalformedInput

from .conftest import World
from .url_table import TABLE, url_for

pytestmark = pytest.mark.django_db

TEN_MB = 10 * 1024 * 1024
LOGIN_PATH = "/login/"
# Values no form expects, as text. Invalid UTF-8 cannot be text: it is sent as percent-escaped bytes (INVALID_UTF8).
HOSTILE: dict[str, str] = {
    "a NUL byte": "Securitas\x00 AB",
    "a 5,000-digit integer": "9" * 5000,
    "an integer beyond 64 bits": str(2**63),
    "an integer below 64 bits": str(-(2**63) - 1),
    "a negative id": "-1",
}
# Each sent in one field at a time; the third (a number) not in free-text fields.
ALONE = ["a NUL byte", "a 5,000-digit integer", "an integer beyond 64 bits"]
INVALID_UTF8 = "%FF%FE%C3%28"  # bytes that no UTF-8 decoder accepts
# Path arguments: the converters let digits through (an <int:> argument) or any text without a slash.
HOSTILE_INTEGERS = [str(2**63), "9" * 30, "9" * 5000]
HOSTILE_SEGMENTS = ["%00", "Customer%00", INVALID_UTF8]


# Names views read besides their pages' own fields: ids, filters and actions sent by htmx or by links.
GENERIC = ["pk", "id", "link", "row", "run", "record", "connection", "connector", "action", "kind", "key", "q", "page"]


Target = tuple[str, str]  # (method, path)
TEXT_INPUTS = {"text", "search", "email", "url", "tel", "password"}


class FormHarvest(HTMLParser):
    """The fields a page sends, by method and path: named inputs, selects and textareas of each form (to its action,
    hx-post or hx-get, else the page itself), and the hx-vals of any element (to its hx-post or hx-get)."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.fields: dict[Target, dict[str, str]] = {}
        self.text: set[str] = set()  # names of free-text fields, where a number is just text
        self._form: Target = ("GET", page)
        self._select: tuple[Target, str] | None = None
        self._textarea: tuple[Target, str] | None = None

    def _target(self, attributes: dict[str, str], default: Target) -> Target:
        for key, method in (("hx-post", "POST"), ("hx-get", "GET"), ("action", attributes.get("method", "GET"))):
            if attributes.get(key):
                return method.upper(), urlsplit(urljoin(self.page, attributes[key])).path
        if "method" in attributes:
            return attributes["method"].upper(), default[1]
        return default

    def _set(self, target: Target, name: str, value: str, *, keep: bool = False) -> None:
        fields = self.fields.setdefault(target, {})
        if keep:
            fields.setdefault(name, value)
        else:
            fields[name] = value

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._form = self._target(attributes, ("GET", urlsplit(self.page).path))
        if "hx-vals" in attributes:
            try:
                values = json.loads(attributes["hx-vals"])
            except ValueError:
                values = {}
            if isinstance(values, dict):
                for key, value in values.items():
                    self._set(self._target(attributes, self._form), str(key), str(value), keep=True)
        name = attributes.get("name", "")
        if not name or name == "csrfmiddlewaretoken":
            return
        if tag == "textarea" or (tag == "input" and attributes.get("type", "text") in TEXT_INPUTS):
            self.text.add(name)
        if tag == "input":
            kind = attributes.get("type", "text")
            if kind in {"checkbox", "radio"} and "checked" not in attributes:
                self._set(self._form, name, "", keep=True)
            else:
                self._set(self._form, name, attributes.get("value", "on" if kind == "checkbox" else ""))
        elif tag == "select":
            self._select = (self._form, name)
            self._set(self._form, name, "", keep=True)
        elif tag == "option" and self._select:
            form, select = self._select
            if "selected" in attributes or not self.fields[form].get(select):
                self._set(form, select, attributes.get("value", ""))
        elif tag == "textarea":
            self._textarea = (self._form, name)
            self._set(self._form, name, "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = ("GET", urlsplit(self.page).path)
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            form, name = self._textarea
            self.fields[form][name] += data


class Harvest(NamedTuple):
    forms: dict[str, dict[str, dict[str, str]]]  # URL name -> method -> field -> the value its page fills in
    text: set[str]  # names of free-text fields anywhere


def harvest(client: Client, pks: dict[str, int]) -> Harvest:
    """Each URL's fields by method, with the values its pages fill in: what the pages send to it, and its own query.
    A URL no page sends anything to gets the GENERIC names, empty, for both methods."""
    by_target: dict[Target, dict[str, str]] = {}
    text: set[str] = set()
    for name in TABLE:
        url = url_for(name, pks)
        response = client.get(url)
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            page = FormHarvest(url)
            page.feed(response.content.decode())
            for target, fields in page.fields.items():
                by_target.setdefault(target, {}).update(fields)
            text |= page.text
    forms = {}
    for name in TABLE:
        path, query = urlsplit(url_for(name, pks))[2:4]
        methods = {method: by_target.get((method, path), {}) for method in ("GET", "POST")}
        methods["GET"] = methods["GET"] | dict(parse_qsl(query))
        if not methods["GET"] and not methods["POST"]:
            methods = {method: dict.fromkeys(GENERIC, "") for method in ("GET", "POST")}
        forms[name] = methods
    return Harvest(forms, text)


@contextmanager
def undone(client: Client) -> Iterator[None]:
    """A savepoint undone afterwards, and the client's cookies put back: each request meets the same world as the
    same logged-in administrator (a POST to /logout/ or /i18n/setlang/ would otherwise change every later one), and a
    failed statement spoils nothing."""
    cookies = copy.deepcopy(client.cookies)
    with transaction.atomic():
        yield
        transaction.set_rollback(True)
    client.cookies = cookies


def encoded(fields: dict[str, str], raw: dict[str, str] | None = None) -> str:
    """A form body or query string; ``raw`` values are already percent-escaped (bytes that are not UTF-8)."""
    parts = [f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in fields.items()]
    parts += [f"{quote(key, safe='')}={value}" for key, value in (raw or {}).items()]
    return "&".join(parts)


class Prober:
    """Sends requests as the administrator; every answer of 500 or more that its URL's row does not expect (readiness
    is 503 in this world, with no worker) is kept as a failure line."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.failures: list[str] = []
        self.sent = 0

    def _keep(self, name: str, what: str, response: Any) -> None:
        self.sent += 1
        if response.status_code >= 500 and response.status_code != TABLE[name].admin:
            self.failures.append(f"{what}: {response.status_code}")
        elif response.status_code == 302 and response["Location"].startswith(f"{LOGIN_PATH}?"):
            self.failures.append(f"{what}: sent to log in, so not tried as the administrator")

    def get(self, name: str, what: str, path: str, query: str) -> None:
        with undone(self.client):
            self._keep(name, f"GET {name} {what}", self.client.get(path, QUERY_STRING=query))

    def post(self, name: str, what: str, path: str, body: str) -> None:
        with undone(self.client):
            response = self.client.generic(
                "POST", path, body.encode("ascii"), content_type="application/x-www-form-urlencoded"
            )
            self._keep(name, f"POST {name} {what}", response)

    def post_multipart(self, name: str, what: str, path: str, fields: dict[str, str]) -> None:
        with undone(self.client):
            self._keep(name, f"POST (multipart) {name} {what}", self.client.post(path, fields))

    def post_raw(self, name: str, what: str, path: str, body: bytes, content_type: str) -> None:
        with undone(self.client):
            self._keep(name, f"POST {name} {what}", self.client.generic("POST", path, body, content_type=content_type))

    def report(self) -> str:
        return f"{len(self.failures)} of {self.sent} requests failed:\n" + "\n".join(self.failures)


@pytest.fixture
def prober(admin_user: Any, caplog: pytest.LogCaptureFixture) -> Prober:
    # Thousands of refusals and 404s are expected here; only server errors are worth a log line in a failure report.
    for logger in ("django.request", "django.security", "core.middleware"):
        caplog.set_level(logging.ERROR, logger=logger)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    return Prober(client)


def test_a_nul_byte_in_a_search_is_refused_in_the_users_language(prober: Prober, licensed_user: Any) -> None:
    """The search the review found answering 500 on PostgreSQL."""
    response = prober.client.get("/companies/?q=%00")
    assert response.status_code == 400
    assert "It contains a NUL character, which no field can hold." in response.content.decode()
    swedish = Client(HTTP_ACCEPT_LANGUAGE="sv")
    swedish.force_login(licensed_user)
    response = swedish.get("/companies/?q=Nordtr%C3%A4%00")
    assert response.status_code == 400
    assert "Den innehåller ett NUL-tecken, som inget fält kan innehålla." in response.content.decode()


def test_a_5000_digit_id_in_a_form_is_refused(prober: Prober, world: World) -> None:
    url = reverse("connections:failed-records", args=[world.connection.pk])
    response = prober.client.post(url, {"action": "dismiss", "link": "9" * 5000})
    assert response.status_code == 400 and "It contains a number too long to read." in response.content.decode()


def test_a_10_mb_field_is_refused(prober: Prober) -> None:
    response = prober.client.post(reverse("crm:company-create"), {"name": "x" * TEN_MB})
    assert response.status_code == 400
    assert "It sends more data than the server accepts." in response.content.decode()


def test_an_id_beyond_64_bits_in_the_path_names_nothing(prober: Prober, world: World) -> None:
    assert prober.client.get(f"/companies/{2**63}/").status_code == 404
    assert prober.client.get(f"/companies/{world.company.pk}/").status_code == 200


def test_htmx_gets_the_reason_as_a_fragment_it_shows(prober: Prober) -> None:
    response = prober.client.get("/companies/?q=%00", headers={"HX-Request": "true"})
    assert response.status_code == 400  # base.html's htmx configuration swaps 400 answers in
    assert response.content.decode().startswith('<div class="message message-error" role="alert">')


def test_a_number_the_database_cannot_hold_is_a_bad_request_not_a_server_error() -> None:
    """Deep in a filter or a form a number may still reach the database: its refusal becomes the same 400."""
    middleware = RefuseMalformedInput(lambda request: HttpResponse())
    request = RequestFactory().get("/settings/quote-sync/connections/1/log/", {"run": str(-(2**100))})
    response = middleware.process_exception(request, OverflowError("Python int too large to convert to SQLite INTEGER"))
    assert response is not None and response.status_code == 400
    assert "It contains a number larger than the database can hold." in response.content.decode()
    assert middleware.process_exception(request, ValueError("a bug, not bad input")) is None


def path_variants(name: str, pks: dict[str, int]) -> Iterator[tuple[str, str]]:
    """The URL with one path argument at a time replaced by a hostile one: (what was replaced, the path)."""
    row = TABLE[name]
    for argument in row.kwargs:
        kwargs = {key: value.format(**pks) for key, value in row.kwargs.items()}
        original = kwargs[argument]
        numeric = original.isdigit()
        marker = "987654321" if numeric else "x987654321"
        path = reverse(name, kwargs=kwargs | {argument: marker})
        for value in HOSTILE_INTEGERS if numeric else [*HOSTILE_SEGMENTS, quote(original) + "%00"]:
            yield f"{argument}={value[:24]}", path.replace(marker, value)


def test_hostile_values_in_every_url_get_no_server_error(prober: Prober, world: World) -> None:
    """Every URL: each hostile value in all its fields and the GENERIC names at once, by GET and by POST; in each of
    its fields alone, the others as its pages fill them, by the method its pages use; then in each path argument."""
    pks = world.pks()
    forms, text = harvest(prober.client, pks)
    ten_mb = encoded({"q": "x" * TEN_MB, "name": "x" * TEN_MB})
    for name in TABLE:
        path = urlsplit(url_for(name, pks)).path
        every = [*forms[name]["GET"], *forms[name]["POST"], *GENERIC]
        for what, value in HOSTILE.items():
            every_field = encoded(dict.fromkeys(every, value))
            prober.get(name, f"with {what} in every field", path, every_field)
            prober.post(name, f"with {what} in every field", path, every_field)
        invalid = encoded({}, dict.fromkeys(every, INVALID_UTF8))
        prober.get(name, "with invalid UTF-8", path, invalid)
        prober.post(name, "with invalid UTF-8", path, invalid)
        prober.post_multipart(name, "with a NUL byte", path, dict.fromkeys(every, HOSTILE["a NUL byte"]))
        prober.post_raw(name, "with a broken multipart body", path, b"--x\r\n", "multipart/form-data; boundary=")
        prober.get(name, "with 10 MB", path, ten_mb)
        prober.post(name, "with 10 MB", path, ten_mb)
        for method, fields in forms[name].items():
            send = prober.get if method == "GET" else prober.post
            for field in fields:
                # A number alone only where it may be read as one (a select, a hidden id, a count, a query value):
                # in a free-text field it is text, and the pass with every field covers it.
                values = ALONE[:2] if field in text else ALONE
                for what in values:
                    send(name, f"with {what} in {field}", path, encoded(fields | {field: HOSTILE[what]}))
        for what, variant in path_variants(name, pks):
            prober.get(name, f"with {what}", variant, "")
            prober.post(name, f"with {what}", variant, "")
    assert not prober.failures, prober.report()
    assert prober.client.get(reverse("settings")).status_code == 200  # still the administrator at the end


# Values hypothesis draws, one field at a time.
NUL_TEXT = st.builds(lambda head, tail: f"{head}\x00{tail}", st.text(max_size=8), st.text(max_size=8))
HOSTILE_VALUES = st.one_of(
    NUL_TEXT,
    st.integers(min_value=2**63, max_value=2**200).map(str),
    st.integers(min_value=-(2**200), max_value=-(2**63) - 1).map(str),
    st.integers(min_value=-(2**63), max_value=-1).map(str),
    st.sampled_from(
        [
            "9" * 4301,
            "²",
            "١٢٣",
            "１２３",
            "NaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "1e-400",
            "0x10",
            " 7 ",
            "0" * 400 + "1",
        ]
    ),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40),
)


def test_hostile_values_mixed_into_valid_forms_get_no_server_error(prober: Prober, world: World) -> None:
    """Each URL's form as its pages fill it, with hypothesis's choice of up to three fields replaced by hostile
    values, sent as a query string or a form body."""
    pks = world.pks()
    forms = harvest(prober.client, pks).forms
    names = sorted(TABLE)

    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(data=st.data())
    def probe(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(names), label="url")
        method = data.draw(st.sampled_from(["GET", "POST"]), label="method")
        fields = dict(forms[name][method] or forms[name]["GET"] or forms[name]["POST"])
        chosen = data.draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3, unique=True))
        for field in chosen:
            fields[field] = data.draw(HOSTILE_VALUES, label=field)
        path = urlsplit(url_for(name, pks)).path
        send = prober.get if method == "GET" else prober.post
        send(name, f"with { ({field: fields[field][:40] for field in chosen})!r}", path, encoded(fields))
        assert not prober.failures, prober.failures[-1]

    probe()
    assert prober.client.get(reverse("settings")).status_code == 200
