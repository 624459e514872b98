from typing import Any

from django import template

from .. import display, shown

register = template.Library()


@register.filter
def get_item(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def model_name(record: Any) -> str:
    return str(record._meta.model_name)


def _labels(actor_type: str, connection: Any) -> dict[str, str] | None:
    return shown.type_labels(connection, actor_type)


@register.filter
def actor_type_name(actor_type: str, connection: Any = None) -> str:
    """An actor type's name for a heading or cell, in the reader's language: ``{{ link.actor_type|actor_type_name:connection }}``."""
    return display.actor_type_name(str(actor_type), _labels(str(actor_type), connection))


@register.filter
def actor_type_word(actor_type: str, connection: Any = None) -> str:
    """An actor type's name inside a sentence (lower case in Swedish)."""
    return display.actor_type_word(str(actor_type), _labels(str(actor_type), connection))


@register.filter
def in_sentence(name: Any) -> str:
    return display.in_sentence(str(name))


@register.filter
def field_type_name(field_type: str) -> str:
    return display.field_type_name(str(field_type))


@register.filter
def access_name(access: str) -> str:
    return display.access_name(str(access))


@register.filter
def label_of(info: Any) -> str:
    """A protocol FieldInfo's label in the reader's language."""
    return display.pick(getattr(info, "labels", None), str(getattr(info, "label", "")))


@register.filter
def erp_value(value: Any, field_type: str | None = None) -> str:
    """A field value as people read it: ``{{ value|erp_value:field.type }}``."""
    return display.format_value(value, field_type)
