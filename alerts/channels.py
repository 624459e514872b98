"""The two ways an alert goes out: e-mail through Django's mail settings, and a Slack-compatible webhook.

Each raises :class:`DeliveryFailed` with a message for people (what failed, and what to check) instead of the
library's exception, so the page and the incident history can show it as it is.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.translation import gettext as _

USER_AGENT = "erpsync-alerts/1"
WEBHOOK_TIMEOUT = 10.0  # seconds for connecting, each read, and the whole answer
MAX_ANSWER_BYTES = 2000  # of a webhook's answer: enough to quote an error, never a flood


class DeliveryFailed(Exception):
    """A notice could not be sent; the message says why, for the admin."""


def send_email(recipients: list[str], subject: str, body: str) -> None:
    """One message to ``recipients`` from DEFAULT_FROM_EMAIL, through the configured mail server (EMAIL_*)."""
    message = EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=recipients)
    server = {"server": f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"}
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as e:
        refused = "; ".join(f"{address}: {code} {_text(answer)}" for address, (code, answer) in e.recipients.items())
        raise DeliveryFailed(_("The mail server refused the recipients: %(refused)s") % {"refused": refused}) from e
    except smtplib.SMTPSenderRefused as e:
        raise DeliveryFailed(
            _("The mail server refused the sender %(sender)s (DEFAULT_FROM_EMAIL): %(code)s %(answer)s")
            % {"sender": settings.DEFAULT_FROM_EMAIL, "code": e.smtp_code, "answer": _text(e.smtp_error)}
        ) from e
    except smtplib.SMTPAuthenticationError as e:
        raise DeliveryFailed(
            _(
                "The mail server did not accept the user name and password (EMAIL_HOST_USER, EMAIL_HOST_PASSWORD): %(code)s %(answer)s"
            )
            % {"code": e.smtp_code, "answer": _text(e.smtp_error)}
        ) from e
    except smtplib.SMTPResponseException as e:
        raise DeliveryFailed(
            _("The mail server at %(server)s answered %(code)s %(answer)s")
            % {**server, "code": e.smtp_code, "answer": _text(e.smtp_error)}
        ) from e
    except smtplib.SMTPServerDisconnected as e:
        raise DeliveryFailed(
            _("The mail server at %(server)s closed the connection: %(error)s") % {**server, "error": str(e) or "—"}
        ) from e
    except smtplib.SMTPException as e:
        raise DeliveryFailed(_("The mail server at %(server)s: %(error)s") % {**server, "error": e}) from e
    except TimeoutError as e:
        raise DeliveryFailed(
            _("The mail server at %(server)s did not answer within %(seconds)s seconds (EMAIL_TIMEOUT).")
            % {**server, "seconds": settings.EMAIL_TIMEOUT}
        ) from e
    except ConnectionRefusedError as e:
        raise DeliveryFailed(
            _("Nothing answers at the mail server's address %(server)s. Check EMAIL_HOST and EMAIL_PORT.") % server
        ) from e
    except ssl.SSLError as e:
        raise DeliveryFailed(
            _("TLS with the mail server at %(server)s failed (EMAIL_USE_TLS, EMAIL_USE_SSL): %(error)s")
            % {**server, "error": e}
        ) from e
    except OSError as e:
        raise DeliveryFailed(
            _("The mail server at %(server)s cannot be reached: %(error)s") % {**server, "error": e}
        ) from e


def post_webhook(url: str, text: str) -> None:
    """POST ``{"text": text}`` (what Slack, Mattermost and Rocket.Chat incoming webhooks take) to ``url``.

    The URL usually holds the webhook's token, so messages name only its host.
    """
    host = {"host": urlsplit(url).hostname or "?"}
    deadline = time.monotonic() + WEBHOOK_TIMEOUT
    try:
        # No redirects: a webhook that moved must be entered again, not followed to wherever it points.
        with (
            httpx.Client(
                timeout=httpx.Timeout(WEBHOOK_TIMEOUT, connect=5.0),
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
            ) as client,
            client.stream("POST", url, json={"text": text}) as response,
        ):
            answer = b""
            for chunk in response.iter_raw():
                answer += chunk
                if len(answer) >= MAX_ANSWER_BYTES:
                    break
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the answer took too long")
    except httpx.TimeoutException as e:
        raise DeliveryFailed(
            _("The webhook at %(host)s did not answer within %(seconds)s seconds.")
            % {**host, "seconds": int(WEBHOOK_TIMEOUT)}
        ) from e
    except httpx.HTTPError as e:
        raise DeliveryFailed(
            _("The webhook at %(host)s cannot be reached: %(error)s") % {**host, "error": str(e) or type(e).__name__}
        ) from e
    if response.is_redirect:
        raise DeliveryFailed(
            _("The webhook at %(host)s answered with a redirect (HTTP %(status)s); enter the address it moved to.")
            % {**host, "status": response.status_code}
        )
    if not response.is_success:
        shown = answer[:200].decode("utf-8", "replace").strip()
        raise DeliveryFailed(
            _("The webhook at %(host)s answered HTTP %(status)s: %(answer)s")
            % {**host, "status": response.status_code, "answer": shown or "—"}
        )


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
