"""The one validation every value of a CRM record passes, however it arrives: typed in a form, synced or imported
from an ERP.

Forms reach it through the records' ``clean_fields`` (``crm.models.Record``), the sync and the import through
:func:`clean_value`; both run Django's own checks of the model field (type, length, e-mail, web address) and refuse
control characters, so a value the edit form would refuse is never stored by another way in.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

# Only addresses a browser opens as a web page: javascript:, data: or file: in a link would run or read something.
WEB_SCHEMES = ["http", "https"]
validate_web_address = URLValidator(schemes=WEB_SCHEMES)

# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators. Text of several lines (see
# is_multiline) may hold tabs and line breaks; a one-line field none of them.
_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MULTI_LINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def is_multiline(model_field: Any) -> bool:
    """Whether a record's field may hold several lines: a TextField, or a text field its model lists as such."""
    model = getattr(model_field, "model", None)
    return isinstance(model_field, models.TextField) or model_field.name in getattr(model, "multiline_fields", ())


def refuse_control_characters(field: Any, value: Any) -> None:
    """Raise ValidationError when text for ``field`` holds a control character (line breaks only in a field of
    several lines)."""
    if not isinstance(value, str):
        return
    found = (_MULTI_LINE if is_multiline(field) else _SINGLE_LINE).search(value)
    if found:
        raise ValidationError(
            _("Remove the control character %(character)s (character %(position)s)."),
            code="control_character",
            params={"character": f"U+{ord(found.group()):04X}", "position": found.start() + 1},
        )


def clean_value(field: Any, value: Any) -> Any:
    """``value`` as ``field`` stores it, or ValidationError with the reasons: the checks a form's save runs.

    List fields (foreign keys) are taken as they are: their ids come from list mappings, and checking that each
    item exists would cost a query per value."""
    if not field.is_relation:
        value = field.clean(value, None)
    refuse_control_characters(field, value)
    return value
