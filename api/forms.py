from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Scope


class NewTokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("What the token is for, e.g. the script."))
    scope = forms.ChoiceField(label=_("Scope"), choices=Scope.choices, initial=Scope.READ, widget=forms.RadioSelect)
    expires = forms.DateField(
        label=_("Expires"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Leave empty for a token that does not expire."),
    )

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        if not name:
            raise forms.ValidationError(_("Give the token a name."))
        return name

    def clean_expires(self) -> date | None:
        expires: date | None = self.cleaned_data.get("expires")
        if expires is not None and expires <= timezone.localdate():
            raise forms.ValidationError(_("Choose a date after today."))
        return expires

    def expires_at(self) -> Any:
        """The end of the chosen day, in the site's time zone."""
        expires = self.cleaned_data.get("expires")
        if expires is None:
            return None
        return timezone.make_aware(datetime.combine(expires, time.max))
