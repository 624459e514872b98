"""How ERP metadata and values are shown to people: in the reader's language, time zone and number format.

Everything a page shows of the ERP goes through here: actor type names (the connector's own, in the reader's
language, when it gives them; else ours), field labels (the same), the words for field types and access, and
field values (``format_value``), so that the ERP tab, the sync history and log, the search results, the
linking screen and the import preview show a value the same way, and a form shows it as the page beside it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from connectors.protocol import ActorType, FieldAccess, FieldType, text_in

# Our own names of the protocol's actor types, for connectors that give none in the reader's language.
ACTOR_TYPE_NAMES: dict[str, Any] = {
    ActorType.CUSTOMER.value: pgettext_lazy("ERP actor type", "Customer"),
    ActorType.SUPPLIER.value: pgettext_lazy("ERP actor type", "Supplier"),
    ActorType.PARTNER.value: pgettext_lazy("ERP actor type", "Partner"),
    ActorType.PERSON.value: pgettext_lazy("ERP actor type", "Person"),
    ActorType.PROJECT.value: pgettext_lazy("ERP actor type", "Project"),
}
FIELD_TYPE_NAMES: dict[str, Any] = {
    FieldType.CHECKBOX.value: pgettext_lazy("ERP field type", "checkbox"),
    FieldType.TEXT.value: pgettext_lazy("ERP field type", "text"),
    FieldType.PASSWORD.value: pgettext_lazy("ERP field type", "password"),
    FieldType.INTEGER.value: pgettext_lazy("ERP field type", "whole number"),
    FieldType.DOUBLE.value: pgettext_lazy("ERP field type", "decimal number"),
    FieldType.DECIMAL.value: pgettext_lazy("ERP field type", "exact decimal number"),
    FieldType.LIST.value: pgettext_lazy("ERP field type", "list"),
    FieldType.DATE.value: pgettext_lazy("ERP field type", "date"),
    FieldType.DATETIME.value: pgettext_lazy("ERP field type", "date and time"),
    FieldType.LABEL.value: pgettext_lazy("ERP field type", "label"),
}
ACCESS_NAMES: dict[str, Any] = {
    FieldAccess.NORMAL.value: pgettext_lazy("ERP field access", "normal"),
    FieldAccess.MANDATORY.value: pgettext_lazy("ERP field access", "mandatory"),
    FieldAccess.READ_ONLY.value: pgettext_lazy("ERP field access", "read-only"),
}
# Languages whose nouns are written in lower case inside a sentence ("Koppla till kund C101").
LOWER_CASE_NOUNS = frozenset({"sv"})
EMPTY = "—"
MAX_DECIMALS = 6


def language() -> str:
    """The reader's language as a two-letter code (the active translation)."""
    return (translation.get_language() or "en").split("-")[0].lower()


def pick(labels: dict[str, str] | None, fallback: str, lang: str | None = None) -> str:
    """The text for the reader's language from a connector's labels (``{"sv": "Kundnummer"}``), else ``fallback``."""
    return text_in(labels, lang or language(), fallback)


def actor_type_name(actor_type: str, labels: dict[str, str] | None = None) -> str:
    """An actor type's name for headings, tabs and table cells: the connector's label in the reader's language,
    else our own name, else the protocol's value."""
    ours = ACTOR_TYPE_NAMES.get(actor_type)
    return pick(labels, str(ours) if ours is not None else actor_type)


def in_sentence(name: str) -> str:
    """A name as written inside a sentence: a noun starts in lower case in Swedish (not an abbreviation)."""
    if language() in LOWER_CASE_NOUNS and len(name) > 1 and name[0].isupper() and not name[1].isupper():
        return name[0].lower() + name[1:]
    return name


def actor_type_word(actor_type: str, labels: dict[str, str] | None = None) -> str:
    """An actor type's name inside a sentence ("Linked to customer C101" in Swedish: "Kopplad till kund C101")."""
    return in_sentence(actor_type_name(actor_type, labels))


def field_type_name(field_type: str) -> str:
    name = FIELD_TYPE_NAMES.get(field_type)
    return str(name) if name is not None else field_type


def access_name(access: str) -> str:
    name = ACCESS_NAMES.get(access)
    return str(name) if name is not None else access


# Values


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip().replace("\xa0", "").replace(" ", ""))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def format_number(value: Any, decimals: bool = True) -> str:
    """A number in the reader's format, grouped ("50 000,00" in Swedish, "50,000.00" in English). A decimal
    number shows two decimals, or as many as it has, up to six; a whole number none."""
    number = _decimal(value)
    if number is None:
        return str(value)
    if not decimals:
        return formats.number_format(number.to_integral_value(), 0, force_grouping=True)
    places = max(2, min(MAX_DECIMALS, -number.normalize().as_tuple().exponent))  # type: ignore[operator]
    return formats.number_format(round(number, places), places, force_grouping=True)


def parse_number(text: str) -> float | None:
    """A number typed in the reader's format, or in the protocol's: "50 000,5", "50000.5" and, in English,
    "50,000.5"; None when it is not a number."""
    cleaned = text.strip().replace("\xa0", "").replace(" ", "").replace("\u202f", "")
    separator = formats.get_format("DECIMAL_SEPARATOR")
    cleaned = cleaned.replace(",", ".") if separator == "," else cleaned.replace(",", "")
    try:
        number = float(cleaned)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def format_datetime(value: Any) -> str:
    """A date and time in the reader's time zone and short format ("2023-04-07 09:08" in Swedish)."""
    if isinstance(value, str) and len(value) == 10:  # a date kept where the CRM field holds only the date
        return format_date(value)
    moment = value if isinstance(value, datetime) else _parse(datetime.fromisoformat, value)
    if not isinstance(moment, datetime):
        return str(value)
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return formats.date_format(moment, "SHORT_DATETIME_FORMAT")


def format_date(value: Any) -> str:
    day = value if isinstance(value, date) else _parse(date.fromisoformat, str(value)[:10])
    if not isinstance(day, date):
        return str(value)
    return formats.date_format(day, "SHORT_DATE_FORMAT")


def _parse(parse: Any, value: Any) -> Any:
    try:
        return parse(str(value))
    except ValueError:
        return None


def format_exact(value: Any, places: int | None = None) -> str:
    """A decimal (the protocol's exact number, a string such as "1234.50") in the reader's format, exactly:
    ``places`` decimals, or as many as it has; a value that is not a number is shown as it is."""
    number = _decimal(value)
    if number is None:
        return str(value)
    shown = places if places is not None else max(0, -number.as_tuple().exponent)  # type: ignore[operator]
    return formats.number_format(number, shown, use_l10n=True, force_grouping=True)


def format_value(
    value: Any, field_type: str | None = None, texts: dict[str, str] | None = None, *, places: int | None = None
) -> str:
    """One ERP (or canonical) field value as text for people: "—" for empty, yes/no for a checkbox, a list item's
    text rather than its key (``texts``: key → text), numbers, dates and times in the reader's format."""
    if value is None or value == "":
        return EMPTY
    if value is True:
        return _("Yes")
    if value is False:
        return _("No")
    if field_type == FieldType.LIST or (field_type is None and texts is not None):
        return (texts or {}).get(str(value), str(value))
    if field_type == FieldType.DECIMAL:
        return format_exact(value, places)
    if field_type == FieldType.DOUBLE:
        return format_number(value)
    if field_type == FieldType.INTEGER:
        return format_number(value, decimals=False)
    if field_type == FieldType.DATETIME:
        return format_datetime(value)
    if field_type == FieldType.DATE:
        return format_date(value)
    if field_type is None and isinstance(value, float):
        return format_number(value)
    return str(value)
