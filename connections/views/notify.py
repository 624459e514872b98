"""The endpoint Sync Connectors call when actors changed in the ERP (protocol v1.1, change_notifications).

It has no session and no CSRF token: a connector proves who it is by signing the call with its shared secret, as
the CRM signs its calls to it. Answers are the protocol's envelope; bad input is answered 4xx, never 500, and
queues nothing (``connections.notifications``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt

from connectors import protocol as p
from connectors.models import SyncConnector

from .. import notifications

SIGNED_HEADERS = (p.HEADER_TIMESTAMP, p.HEADER_NONCE, p.HEADER_SIGNATURE, p.HEADER_KEY_ID)


def answer(envelope: p.Envelope, status: int = 200, extra: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(envelope.model_dump_json(exclude_none=True), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    for name, value in (extra or {}).items():
        response[name] = value
    return response


@csrf_exempt
def notify(request: HttpRequest, connector_id: int) -> HttpResponse:
    """POST /connector-api/v1/notify/<connector id>: a signed ChangeNotification from that Sync Connector."""
    try:
        if request.method != "POST":
            raise notifications.Refused(
                405, p.ErrorCode.INVALID_REQUEST, _("Change notifications are sent with POST."), str(request.method)
            )
        connector = SyncConnector.objects.filter(pk=connector_id).first()
        if connector is None:
            raise notifications.Refused(
                404, p.ErrorCode.NOT_FOUND, _("No Sync Connector has this notify URL."), f"no connector {connector_id}"
            )
        headers = {name: request.headers.get(name, "") for name in SIGNED_HEADERS}
        notifications.check_signed(headers)
        length = notifications.check_size(request.META.get("CONTENT_LENGTH") or "")
        try:
            body = request.body
        except RawPostDataException:  # read as a form already: not a notification
            body = b""
        if len(body) != length:
            raise notifications.Refused(
                400,
                p.ErrorCode.INVALID_REQUEST,
                _("The notification was cut short."),
                f"{len(body)} of {length} bytes",
            )
        # The path the connector signed is the path of the notify URL it was given; a proxy in front of the app
        # may have changed the one that arrives here.
        paths = list(dict.fromkeys([request.path, urlsplit(connector.notify_url).path or request.path]))
        data = notifications.receive(connector, paths, headers, body)
    except notifications.Refused as refused:
        extra = {"Allow": "POST"} if refused.status == 405 else {}
        if refused.retry_after is not None:
            extra["Retry-After"] = str(int(refused.retry_after + 0.999))
        return answer(refused.envelope(), refused.status, extra)
    state = p.State.OK_WITH_INFO if data.ignored else p.State.OK
    envelope = p.Envelope(ok=True, state=state, data=data.model_dump(mode="json"))
    if data.ignored:
        envelope = envelope.model_copy(
            update={
                "user_explanation": notifications.explained(
                    _("Some connections named are not synced on notification; see ignored.")
                ),
                "technical_explanation": ", ".join(f"{i.connection_id}: {i.reason.value}" for i in data.ignored),
            }
        )
    return answer(envelope)
