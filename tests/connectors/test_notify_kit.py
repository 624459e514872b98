"""The conformance kit's checks of change notifications (protocol v1.1, change_notifications): a small SDK
connector that notifies passes ``strict``, and the checks fail against variants that sign with the wrong secret,
never notify, or keep notifying after the notify URL was taken away. The Demo ERP passes them too."""

from __future__ import annotations

from connectors import protocol as p
from connectors.conformance import run_conformance
from connectors.sdk import ConnectorApp, Context, Notifier

from ..conftest import DEMO_CONFIG, RunningConnector
from .servers import serving
from .tiny_connector import AddressBook

SECRET = "tiny-connector-secret-42"
CONFIG: dict[str, p.Value] = {"owner": "Tests"}
CHECKS = [
    "change_notifications: a change is notified within seconds, signed and well formed",
    "change_notifications: a notification the CRM answers with 503 is sent again",
    "change_notifications: after SaveConnection without a notify URL, nothing is notified",
]


class NotifyingBook(AddressBook):
    """The address book telling the CRM of every actor it creates or saves; ``broken`` names what a variant gets
    wrong on purpose."""

    capabilities = frozenset({p.Capability.CHANGE_NOTIFICATIONS.value})

    def __init__(self, **broken: bool) -> None:
        super().__init__()
        self.broken = broken
        self.urls: dict[str, str] = {}

    def notifications_started(self, notifier: Notifier) -> None:
        if self.broken.get("signs_wrongly"):
            notifier.secret = "not-the-shared-secret-at-all"
        super().notifications_started(notifier)

    def save_connection(self, request: p.SaveConnectionRequest, context: Context) -> p.Empty:
        if request.notify_url:
            self.urls[request.connection_id] = request.notify_url
        return super().save_connection(request, context)

    def save_actors(self, request: p.SaveActorsRequest, context: Context) -> p.SaveActorsData:
        data = super().save_actors(request, context)
        changed = [result.key for result in data.results if result.ok]
        if self.broken.get("never_notifies") or not changed:
            return data
        if self.broken.get("keeps_old_url") and self.notifier is not None:
            for connection_id, url in self.urls.items():  # as if it forgot to drop a URL taken away
                self.notifier.register(connection_id, url)
        self.notify_changed(request.connection_id, p.ActorType.CUSTOMER, changed)
        return data


def kit(book: AddressBook) -> tuple[list[str], dict[str, str]]:
    """The names of the checks run, and the failed ones' details by name."""
    app = ConnectorApp(book, SECRET)
    with serving(app) as url:
        report = run_conformance(url, SECRET, CONFIG, strict=True, notify_wait=3)
    if app.notifier is not None:
        app.notifier.close()
    return [check.name for check in report.checks], {check.name: check.detail for check in report.failed}


def test_a_connector_that_notifies_passes_strict() -> None:
    names, failed = kit(NotifyingBook())
    assert not failed
    assert all(name in names for name in CHECKS)


def test_the_kit_catches_notifications_signed_with_another_secret() -> None:
    _names, failed = kit(NotifyingBook(signs_wrongly=True))
    assert set(failed) == set(CHECKS[:2])
    assert "the signature is wrong" in failed[CHECKS[0]]


def test_the_kit_catches_a_connector_that_names_the_capability_and_never_notifies() -> None:
    _names, failed = kit(NotifyingBook(never_notifies=True))
    assert set(failed) == set(CHECKS[:2])
    assert failed[CHECKS[0]] == "no notification within 3 s of SaveActors"


def test_the_kit_catches_notifications_after_the_notify_url_was_taken_away() -> None:
    _names, failed = kit(NotifyingBook(keeps_old_url=True))
    assert list(failed) == [CHECKS[2]]


def test_a_connector_without_the_capability_is_not_checked_for_it() -> None:
    names, failed = kit(AddressBook())
    assert not failed
    assert not any(name.startswith("change_notifications") for name in names)


def test_the_demo_erp_notifies_and_passes_strict(demo_connector: RunningConnector) -> None:
    report = run_conformance(demo_connector.url, demo_connector.secret, DEMO_CONFIG, strict=True)
    assert report.ok, "\n".join(line for line in report.lines() if not line.startswith("PASS"))
    names = [check.name for check in report.checks]
    assert all(name in names for name in CHECKS)
