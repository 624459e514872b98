"""Every URL of the app with what each kind of user gets for GET: the table the security tests run from.

A URL pattern that is added, renamed or given other arguments makes ``test_url_matrix`` fail until it is
described here. Django admin's own pages (namespace ``admin``) are tested separately, with the same four roles.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from django.urls import URLPattern, URLResolver, get_resolver, reverse

LOGIN = "login"  # anonymous users are sent to /login/?next=<the URL>
ROLES = ("anonymous", "outsider", "licensed", "admin")
SKIPPED_NAMESPACES = {"admin"}  # Django admin: test_admin_pages_* in test_url_matrix


class Row(NamedTuple):
    kwargs: dict[str, str]  # each value is formatted with World.pks(), e.g. "{connection}"
    query: str  # formatted the same way
    post: bool  # changes something when POSTed (the CSRF tests use every URL anyway)
    anonymous: int | str
    outsider: int
    licensed: int
    admin: int

    def expected(self, role: str) -> int | str:
        return getattr(self, role)


# outsider: logged in, no permission. licensed: CRM view/add/change + connections.use_erp_sync.
# admin: superuser. 405: the view answers POST only. The connection is visible to everyone and everyone may
# connect and create through it; "other" is a company not linked to the ERP.
# fmt: off
TABLE: dict[str, Row] = {
    # The shell                            kwargs                                                   query              POST   anon   outs lic  admin
    "home":                           Row({},                                                       "",                False, LOGIN, 403, 302, 302),
    "login":                          Row({},                                                       "",                True,  200,   302, 302, 302),
    "logout":                         Row({},                                                       "",                True,  405,   405, 405, 405),
    "set_language":                   Row({},                                                       "",                True,  302,   302, 302, 302),
    "health":                         Row({},                                                       "",                False, 200,   200, 200, 200),
    # Monitoring (tests/monitoring): the test client is on loopback, allowed by default while DEBUG is on; no worker
    # has reported in this world, so readiness answers 503 to everyone.
    "health-ready":                   Row({},                                                       "",                False, 503,   503, 503, 503),
    "metrics":                        Row({},                                                       "",                False, 200,   200, 200, 200),
    "settings":                       Row({},                                                       "",                False, LOGIN, 403, 403, 200),
    # Settings and maintenance → Quote/Sync (ERP sync admins only)
    "connections:quote-sync":         Row({},                                                       "",                False, 302,   302, 302, 302),
    "connections:sync":               Row({},                                                       "",                False, LOGIN, 403, 403, 200),
    "connections:workers":            Row({},                                                       "",                False, LOGIN, 403, 403, 200),
    "alerts:settings":                Row({},                                                       "",                True,  LOGIN, 403, 403, 200),
    "alerts:connection":              Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 200),
    "alerts:test":                    Row({},                                                       "",                True,  LOGIN, 403, 403, 405),
    "connections:sync-settings":      Row({},                                                       "",                True,  LOGIN, 403, 403, 200),
    "connections:connector-add":      Row({},                                                       "",                True,  LOGIN, 403, 403, 200),
    "connections:connector-edit":     Row({"pk": "{connector}"},                                    "",                True,  LOGIN, 403, 403, 200),
    "connections:connector-check":    Row({"pk": "{connector}"},                                    "",                True,  LOGIN, 403, 403, 405),
    "connections:connector-delete":   Row({"pk": "{connector}"},                                    "",                True,  LOGIN, 403, 403, 200),
    "connections:connection-add":     Row({},                                                       "",                True,  LOGIN, 403, 403, 200),
    "connections:connection-config-fields": Row({},                                                 "connector={connector}", False, LOGIN, 403, 403, 200),
    "connections:connection-test-new": Row({},                                                      "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-config-list-new": Row({},                                               "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-config-list": Row({"pk": "{connection}"},                               "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-detail":  Row({"pk": "{connection}"},                                   "",                False, LOGIN, 403, 403, 200),
    "connections:connection-edit":    Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 200),
    "connections:connection-test":    Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-test-saved": Row({"pk": "{connection}"},                                "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-actor-types": Row({"pk": "{connection}"},                               "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-refresh": Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-active":  Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-delete":  Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 200),
    "connections:sync-filter":        Row({"pk": "{connection}", "actor_type": "Customer"},         "",                True,  LOGIN, 403, 403, 200),
    "connections:connection-automatic-sync": Row({"pk": "{connection}"},                            "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-restore": Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-bulk-run": Row({"pk": "{connection}"},                                  "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-reconcile": Row({"pk": "{connection}"},                                 "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-plan":    Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 405),
    "connections:plan":               Row({"pk": "{plan}"},                                         "",                False, LOGIN, 403, 403, 200),
    "connections:plan-progress":      Row({"pk": "{plan}"},                                         "",                False, LOGIN, 403, 403, 200),
    "connections:plan-action":        Row({"pk": "{plan}"},                                         "",                True,  LOGIN, 403, 403, 405),
    "connections:mapping-start":      Row({"pk": "{connection}"},                                   "",                False, LOGIN, 403, 403, 302),
    "connections:mapping":            Row({"pk": "{connection}", "actor_type": "Customer"},         "",                True,  LOGIN, 403, 403, 200),
    "connections:mapping-rank":       Row({"pk": "{connection}", "actor_type": "Customer"},         "",                True,  LOGIN, 403, 403, 405),
    "connections:mapping-undecided":  Row({"pk": "{connection}", "actor_type": "Customer"},         "",                True,  LOGIN, 403, 403, 405),
    "connections:mapping-list":       Row({"pk": "{connection}", "actor_type": "Customer", "key": "COUNTRY"}, "",      True,  LOGIN, 403, 403, 200),
    "connections:mapping-defaults":   Row({"pk": "{connection}", "actor_type": "Customer"},         "",                True,  LOGIN, 403, 403, 200),
    "connections:run-detail":         Row({"pk": "{connection}", "run_pk": "{run}"},                "",                False, LOGIN, 403, 403, 200),
    "connections:run-undo":           Row({"pk": "{connection}", "run_pk": "{run}"},                "",                True,  LOGIN, 403, 403, 200),
    "connections:sync-log":           Row({"pk": "{connection}"},                                   "",                False, LOGIN, 403, 403, 200),
    "connections:sync-log-export":    Row({"pk": "{connection}"},                                   "outcome=written", False, LOGIN, 403, 403, 200),
    "connections:failed-records":     Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 200),
    "connections:held-conflicts":     Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 200),
    "connections:failed-records-export": Row({"pk": "{connection}"},                                "",                False, LOGIN, 403, 403, 200),
    "connections:import":             Row({},                                                       "",                True,  LOGIN, 403, 403, 200),
    "connections:import-detail":      Row({"pk": "{erp_import}"},                                   "",                False, LOGIN, 403, 403, 200),
    "connections:import-row":         Row({"pk": "{erp_import}", "row_pk": "{row}"},                "",                True,  LOGIN, 403, 403, 405),
    "connections:import-counts":      Row({"pk": "{erp_import}"},                                   "",                False, LOGIN, 403, 403, 200),
    "connections:import-action":      Row({"pk": "{erp_import}"},                                   "",                True,  LOGIN, 403, 403, 405),
    "connections:import-progress":    Row({"pk": "{erp_import}"},                                   "",                False, LOGIN, 403, 403, 200),
    # The ERP tab's actions (licensed users; a connection the user may not see is 404, a right not held 403)
    "erp:sync-now":                   Row({"pk": "{link}"},                                         "",                True,  LOGIN, 405, 405, 405),
    "erp:run":                        Row({"pk": "{run}"},                                          "",                False, LOGIN, 404, 200, 200),
    "erp:disconnect":                 Row({"pk": "{link}"},                                         "",                True,  LOGIN, 405, 405, 405),
    "erp:relink":                     Row({"pk": "{link}"},                                         "",                True,  LOGIN, 405, 405, 405),
    "erp:resolve-conflict":           Row({"pk": "{link}"},                                         "",                True,  LOGIN, 405, 405, 405),
    "erp:connect":                    Row({"connection_pk": "{connection}", "record_pk": "{other}"}, "kind=company",   True,  LOGIN, 404, 200, 200),
    "erp:create":                     Row({"connection_pk": "{connection}", "record_pk": "{other}"}, "kind=company",   True,  LOGIN, 404, 200, 200),
    # The user's own API tokens (any logged-in user) and the API's documentation page
    "tokens:list":                    Row({},                                                       "",                True,  LOGIN, 200, 200, 200),
    "tokens:revoke":                  Row({"pk": "1"},                                              "",                True,  LOGIN, 405, 405, 405),
    "tokens:api-docs":                Row({},                                                       "",                False, LOGIN, 200, 200, 200),
    # Called by Sync Connectors, signed with their shared secret: no session, no CSRF token (SIGNED_NOT_SESSION)
    "connector-notify":               Row({"connector_id": "{connector}"},                          "",                True,  405,   405, 405, 405),
    # CRM records (model permissions)
    "crm:company-list":               Row({},                                                       "",                False, LOGIN, 403, 200, 200),
    "crm:company-create":             Row({},                                                       "",                True,  LOGIN, 403, 200, 200),
    "crm:company-detail":             Row({"pk": "{company}"},                                      "",                False, LOGIN, 403, 200, 200),
    "crm:company-tab":                Row({"pk": "{company}", "tab": "erp"},                        "",                False, LOGIN, 403, 200, 200),
    "crm:company-edit":               Row({"pk": "{company}"},                                      "",                True,  LOGIN, 403, 200, 200),
    "crm:contact-list":               Row({},                                                       "",                False, LOGIN, 403, 200, 200),
    "crm:contact-create":             Row({},                                                       "",                True,  LOGIN, 403, 200, 200),
    "crm:contact-detail":             Row({"pk": "{contact}"},                                      "",                False, LOGIN, 403, 200, 200),
    "crm:contact-tab":                Row({"pk": "{contact}", "tab": "erp"},                        "",                False, LOGIN, 403, 200, 200),
    "crm:contact-edit":               Row({"pk": "{contact}"},                                      "",                True,  LOGIN, 403, 200, 200),
    "crm:project-list":               Row({},                                                       "",                False, LOGIN, 403, 200, 200),
    "crm:project-create":             Row({},                                                       "",                True,  LOGIN, 403, 200, 200),
    "crm:project-detail":             Row({"pk": "{project}"},                                      "",                False, LOGIN, 403, 200, 200),
    "crm:project-tab":                Row({"pk": "{project}", "tab": "erp"},                        "",                False, LOGIN, 403, 200, 200),
    "crm:project-edit":               Row({"pk": "{project}"},                                      "",                True,  LOGIN, 403, 200, 200),
}
# fmt: on

# URLs a connector calls, which prove who calls by a signature (docs/connector-protocol.md): CSRF-exempt, as no
# browser session can reach them; test_csrf checks that an unsigned POST is refused there and changes nothing.
SIGNED_NOT_SESSION = {"connector-notify"}


API_NAMESPACE = "api"  # /api/v1/: bearer tokens, no session; described in API_TABLE below, not in TABLE
API_ROLES = ("none", "outsider", "licensed", "admin")  # no token, then a read-write token of each user


class ApiRow(NamedTuple):
    method: str
    kwargs: dict[str, str]  # formatted with World.pks(), as Row's
    body: dict[str, object] | None  # JSON; string values formatted too
    none: int
    outsider: int
    licensed: int
    admin: int

    def expected(self, role: str) -> int:
        return int(getattr(self, role))


# The API's routes, each called by every role in turn, in this order, against one world (test_api_matrix): a write
# that succeeds for the licensed user leaves what the admin then meets (the link already linked, the run already
# queued, the link already gone). The outsider has no ERP sync licence; the licensed user is no ERP sync admin.
C = {"connection_id": "{connection}"}
# fmt: off
API_TABLE: dict[str, ApiRow] = {
    # name                         method    kwargs                               body                                            none outs lic  admin
    "api:openapi-json":            ApiRow("GET",    {},                           None,                                           200, 200, 200, 200),
    "api:api-root":                ApiRow("GET",    {},                           None,                                           404, 404, 404, 404),
    "api:connections":             ApiRow("GET",    {},                           None,                                           401, 403, 200, 200),
    "api:connection":              ApiRow("GET",    C,                            None,                                           401, 403, 200, 200),
    "api:sync-log":                ApiRow("GET",    C,                            None,                                           401, 403, 403, 200),
    "api:failed":                  ApiRow("GET",    C,                            None,                                           401, 403, 403, 200),
    "api:links":                   ApiRow("GET",    {},                           None,                                           401, 403, 200, 200),
    "api:link":                    ApiRow("GET",    {"link_id": "{link}"},        None,                                           401, 403, 200, 200),
    "api:run":                     ApiRow("GET",    {"run_id": "{run}"},          None,                                           401, 403, 200, 200),
    "api:import":                  ApiRow("GET",    {"import_id": "{erp_import}"}, None,                                          401, 403, 403, 200),
    "api:import-rows":             ApiRow("GET",    {"import_id": "{erp_import}"}, None,                                          401, 403, 403, 200),
    # Writes. The key is no actor of the ERP: a licensed user and an admin get as far as the ERP's answer.
    "api:link-create":             ApiRow("POST",   {},                           {"connection": "{connection}", "record_kind": "company", "record_id": "{other}", "actor_type": "Customer", "erp_key": "NO-SUCH-KEY"}, 401, 403, 409, 409),
    "api:link-sync":               ApiRow("POST",   {"link_id": "{link}"},        {},                                             401, 403, 202, 200),
    "api:connection-activate":     ApiRow("POST",   C,                            {},                                             401, 403, 403, 200),
    "api:failed-retry":            ApiRow("POST",   C,                            {"all": True},                                  401, 403, 403, 202),
    "api:failed-dismiss":          ApiRow("POST",   C,                            {"all": True, "reason": "known"},               401, 403, 403, 200),
    "api:import-row":              ApiRow("POST",   {"import_id": "{erp_import}", "row_id": "{row}"}, {"included": True},         401, 403, 403, 200),
    "api:import-start":            ApiRow("POST",   {"import_id": "{erp_import}"}, {},                                            401, 403, 403, 202),
    # The import is queued, so the connection runs a bulk job: a second one is refused.
    "api:connection-sync-all":     ApiRow("POST",   C,                            {},                                             401, 403, 403, 409),
    "api:connection-resync":       ApiRow("POST",   C,                            {},                                             401, 403, 403, 409),
    "api:imports":                 ApiRow("POST",   {},                           {"connection": "{connection}", "actor_type": "Customer", "everything": True}, 401, 403, 403, 409),
    "api:link-delete":             ApiRow("DELETE", {"link_id": "{link}"},        None,                                           401, 403, 204, 404),
    "api:connection-deactivate":   ApiRow("POST",   C,                            {},                                             401, 403, 403, 200),
}
# fmt: on


def api_body(row: ApiRow, pks: dict[str, int]) -> dict[str, object] | None:
    """The row's body with "{connection}" and the like replaced by ids (numbers stay numbers)."""
    if row.body is None:
        return None
    body: dict[str, object] = {}
    for key, value in row.body.items():
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            body[key] = pks[value[1:-1]]
        else:
            body[key] = value
    return body


def api_url(name: str, pks: dict[str, int]) -> str:
    row = API_TABLE[name]
    return reverse(name, kwargs={key: int(value.format(**pks)) for key, value in row.kwargs.items()})


class Entry(NamedTuple):
    name: str  # namespace:name
    route: str  # the whole route, e.g. "erp/links/<int:pk>/sync-now/"
    arguments: frozenset[str]  # the converters' names


def resolver_entries() -> Iterator[Entry]:
    """Every URL pattern the resolver knows, included ones too, outside the skipped namespaces."""

    def walk(patterns: list[URLPattern | URLResolver], namespaces: tuple[str, ...], route: str) -> Iterator[Entry]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace in SKIPPED_NAMESPACES:
                    continue
                inner = (*namespaces, pattern.namespace) if pattern.namespace else namespaces
                yield from walk(pattern.url_patterns, inner, route + str(pattern.pattern))
            else:
                converters = getattr(pattern.pattern, "converters", {})
                regex_groups = pattern.pattern.regex.groupindex
                name = ":".join((*namespaces, pattern.name or f"<unnamed {route}{pattern.pattern}>"))
                yield Entry(name, route + str(pattern.pattern), frozenset(converters) | frozenset(regex_groups))

    return walk(get_resolver().url_patterns, (), "")


def url_for(name: str, pks: dict[str, int]) -> str:
    row = TABLE[name]
    path = reverse(name, kwargs={key: value.format(**pks) for key, value in row.kwargs.items()})
    return f"{path}?{row.query.format(**pks)}" if row.query else path
