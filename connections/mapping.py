"""Which CRM record and fields an ERP actor type maps to, and which types fit together."""

from __future__ import annotations

from django.db import models

from connectors.protocol import ActorType, FieldType
from crm.models import Company, Contact, ListItem, Project

CRM_MODEL: dict[str, type[Company] | type[Contact] | type[Project]] = {
    ActorType.CUSTOMER: Company,
    ActorType.SUPPLIER: Company,
    ActorType.PARTNER: Company,
    ActorType.PERSON: Contact,
    ActorType.PROJECT: Project,
}


def crm_field_type(model: type[models.Model], key: str) -> str:
    """The protocol field type that a CRM field (by its original key, e.g. NAME) holds."""
    field = model._meta.get_field(model.field_keys[key])  # type: ignore[attr-defined]
    if isinstance(field, models.ForeignKey) and issubclass(field.related_model, ListItem):  # type: ignore[arg-type]
        return FieldType.LIST
    if isinstance(field, models.DateField):
        return FieldType.DATE
    return FieldType.TEXT


def compatible(erp_type: str, crm_type: str) -> bool:
    """Whether values can flow between the two at all (directions are decided in field mapping)."""
    return erp_type == crm_type or (crm_type == FieldType.TEXT and erp_type in (FieldType.INTEGER, FieldType.DOUBLE))


def auto_map(actor_type: str, erp_key: str, erp_type: str) -> str:
    """The CRM field key an ERP field maps to by name (case-insensitive), or '' if none fits."""
    model = CRM_MODEL.get(actor_type)
    if model is None:
        return ""
    key = erp_key.upper()
    if key in model.field_keys and compatible(erp_type, crm_field_type(model, key)):
        return key
    return ""
