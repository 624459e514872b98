"""Forms of the Alerts tab: the installation's channels and thresholds, and one connection's recipients."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.core.validators import EmailValidator
from django.utils.translation import gettext_lazy as _

from connections.models import heartbeat_stale_after

from .models import AlertSettings, ConnectionAlertSettings, split_addresses
from .services import SETTING_FIELDS


def clean_addresses(text: str) -> str:
    """The addresses one per line, or a ValidationError naming those that are not e-mail addresses."""
    addresses = split_addresses(text)
    check = EmailValidator()
    wrong = []
    for address in addresses:
        try:
            check(address)
        except forms.ValidationError:
            wrong.append(address)
    if wrong:
        raise forms.ValidationError(
            _("These are not e-mail addresses: %(wrong)s"), params={"wrong": ", ".join(wrong)}, code="invalid"
        )
    return "\n".join(addresses)


class AlertSettingsForm(forms.ModelForm):
    webhook_url = forms.URLField(
        label=_("Webhook URL"),
        required=False,
        max_length=1000,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"autocomplete": "off"}),
        help_text=_(
            'Optional: an incoming webhook that takes Slack\'s JSON ({"text": …}): Slack, Mattermost, Rocket.Chat, Teams workflows.'
        ),
    )
    remove_webhook = forms.BooleanField(label=_("Remove the webhook"), required=False)

    class Meta:
        model = AlertSettings
        fields = list(SETTING_FIELDS)
        widgets = {"recipients": forms.Textarea(attrs={"rows": 3, "placeholder": "ops@example.com"})}
        help_texts = {"recipients": _("E-mail addresses, one per line. They hear of every incident.")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.webhook_url if self.instance.webhook_url_encrypted else ""
        if stored:
            # The address holds the webhook's token: only its host is shown, and an empty field keeps it.
            host = urlsplit(stored).hostname or "?"
            self.fields["webhook_url"].widget.attrs["placeholder"] = f"https://{host}/…"
            self.fields["webhook_url"].help_text = _(
                "A webhook at %(host)s is set; leave empty to keep it, or enter another address."
            ) % {"host": host}
        else:
            del self.fields["remove_webhook"]

    def clean_recipients(self) -> str:
        return clean_addresses(self.cleaned_data["recipients"])

    def clean_webhook_url(self) -> str:
        url: str = self.cleaned_data["webhook_url"].strip()
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise forms.ValidationError(_("Enter an http or https address."))
            if parts.username or parts.password:
                raise forms.ValidationError(_("Put no user name or password in the address."))
        return url

    def clean_no_worker_minutes(self) -> int:
        minutes: int = self.cleaned_data["no_worker_minutes"]
        # Workers report every ERPSYNC_HEARTBEAT_SECONDS; less than three missed heartbeats is not yet "no worker".
        least = math.ceil(heartbeat_stale_after().total_seconds() / 60)
        if minutes < least:
            raise forms.ValidationError(
                _(
                    "Workers report through beat's heartbeat; one missing for less than %(n)s minutes may just be late. Use at least %(n)s minutes."
                ),
                params={"n": least},
                code="min_value",
            )
        return minutes

    def webhook_change(self) -> str | None:
        """None keeps the stored webhook, "" removes it, anything else replaces it."""
        if self.cleaned_data.get("remove_webhook"):
            return ""
        return self.cleaned_data["webhook_url"] or None

    def values(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in SETTING_FIELDS}


class ConnectionAlertsForm(forms.ModelForm):
    class Meta:
        model = ConnectionAlertSettings
        fields = ["recipients", "failed_records_threshold"]
        widgets = {"recipients": forms.Textarea(attrs={"rows": 3, "placeholder": "erp-team@example.com"})}
        help_texts = {
            "recipients": _(
                "E-mail addresses, one per line. They hear of this connection's incidents and its Sync Connector's, as well as the recipients on the Alerts tab."
            ),
            "failed_records_threshold": _("Leave empty to use the threshold on the Alerts tab."),
        }

    def clean_recipients(self) -> str:
        return clean_addresses(self.cleaned_data["recipients"])
