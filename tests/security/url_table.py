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
    "settings":                       Row({},                                                       "",                False, LOGIN, 403, 403, 200),
    # Settings and maintenance → Quote/Sync (ERP sync admins only)
    "connections:quote-sync":         Row({},                                                       "",                False, 302,   302, 302, 302),
    "connections:sync":               Row({},                                                       "",                False, LOGIN, 403, 403, 200),
    "connections:workers":            Row({},                                                       "",                False, LOGIN, 403, 403, 200),
    "connections:sync-settings":      Row({},                                                       "",                True,  LOGIN, 403, 403, 200),
    "connections:connector-add":      Row({},                                                       "",                True,  LOGIN, 403, 403, 200),
    "connections:connector-edit":     Row({"pk": "{connector}"},                                    "",                True,  LOGIN, 403, 403, 200),
    "connections:connector-check":    Row({"pk": "{connector}"},                                    "",                True,  LOGIN, 403, 403, 405),
    "connections:connector-delete":   Row({"pk": "{connector}"},                                    "",                True,  LOGIN, 403, 403, 200),
    "connections:connection-add":     Row({},                                                       "",                True,  LOGIN, 403, 403, 200),
    "connections:connection-config-fields": Row({},                                                 "connector={connector}", False, LOGIN, 403, 403, 200),
    "connections:connection-test-new": Row({},                                                      "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-detail":  Row({"pk": "{connection}"},                                   "",                False, LOGIN, 403, 403, 200),
    "connections:connection-edit":    Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 200),
    "connections:connection-test":    Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-test-saved": Row({"pk": "{connection}"},                                "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-actor-types": Row({"pk": "{connection}"},                               "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-refresh": Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-active":  Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 405),
    "connections:connection-delete":  Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 200),
    "connections:connection-bulk-run": Row({"pk": "{connection}"},                                  "",                True,  LOGIN, 403, 403, 405),
    "connections:mapping-start":      Row({"pk": "{connection}"},                                   "",                False, LOGIN, 403, 403, 302),
    "connections:mapping":            Row({"pk": "{connection}", "actor_type": "Customer"},         "",                True,  LOGIN, 403, 403, 200),
    "connections:mapping-rank":       Row({"pk": "{connection}", "actor_type": "Customer"},         "",                True,  LOGIN, 403, 403, 405),
    "connections:mapping-list":       Row({"pk": "{connection}", "actor_type": "Customer", "key": "COUNTRY"}, "",      True,  LOGIN, 403, 403, 200),
    "connections:mapping-defaults":   Row({"pk": "{connection}", "actor_type": "Customer"},         "",                True,  LOGIN, 403, 403, 200),
    "connections:sync-log":           Row({"pk": "{connection}"},                                   "",                False, LOGIN, 403, 403, 200),
    "connections:failed-records":     Row({"pk": "{connection}"},                                   "",                True,  LOGIN, 403, 403, 200),
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
    "erp:connect":                    Row({"connection_pk": "{connection}", "record_pk": "{other}"}, "kind=company",   True,  LOGIN, 404, 200, 200),
    "erp:create":                     Row({"connection_pk": "{connection}", "record_pk": "{other}"}, "kind=company",   True,  LOGIN, 404, 200, 200),
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
