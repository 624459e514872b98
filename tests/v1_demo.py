"""Demo ERP as a protocol v1 connector: no capabilities, and answers without the v1.1 fields (labels, suggested
directions). What a connector written before v1.1 answers; the CRM must work with it as before."""

from __future__ import annotations

from typing import Any

from connectors import protocol as p
from connectors.demo.connector import DemoConnector
from connectors.sdk import Context

V1_ONLY = {"labels": None, "descriptions": None, "suggested_direction": None}


def _v1_fields(data: Any) -> p.FieldsData:
    return p.FieldsData(fields=[field.model_copy(update=V1_ONLY) for field in data.fields])


def _v1_items(data: Any) -> p.ListData:
    return p.ListData(items=[item.model_copy(update={"labels": None}) for item in data.items])


class V1DemoConnector(DemoConnector):
    capabilities: frozenset[str] = frozenset()

    def get_config_data(self, request: p.GetConfigDataRequest, context: Context) -> p.FieldsData:
        return _v1_fields(super().get_config_data(request, context))

    def get_supported_actor_types(self, request: p.GetSupportedActorTypesRequest, context: Context) -> p.ActorTypesData:
        return p.ActorTypesData(actor_types=super().get_supported_actor_types(request, context).actor_types)

    def get_supported_actor_type_fields(
        self, request: p.GetSupportedActorTypeFieldsRequest, context: Context
    ) -> p.FieldsData:
        return _v1_fields(super().get_supported_actor_type_fields(request, context))

    def get_list(self, request: p.GetListRequest, context: Context) -> p.ListData:
        return _v1_items(super().get_list(request, context))

    def get_list_items(self, request: p.GetListItemsRequest, context: Context) -> p.ListData:
        return _v1_items(super().get_list_items(request, context))
