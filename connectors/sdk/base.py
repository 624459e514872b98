"""The base class a connector implements, one method per protocol operation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .. import protocol as p
from .notify import Notifier


@dataclass
class Context:
    """What an operation knows about the call besides its request."""

    language: str = "en"
    notices: list[tuple[p.State, dict[str, str], str]] = field(default_factory=list)

    def notice(self, state: p.State, user: str | dict[str, str], technical: str = "") -> None:
        """Answer ok_with_info or warning instead of plain ok, with an explanation for people."""
        if state not in (p.State.OK_WITH_INFO, p.State.WARNING):
            raise ValueError("a notice is ok_with_info or warning; raise ConnectorFailure for errors")
        self.notices.append((state, {"en": user} if isinstance(user, str) else dict(user), technical))


@dataclass(frozen=True)
class EncodedData:
    """An operation's data already encoded as JSON by the connector, e.g. straight from its own store.

    The SDK validates it against the operation's data model before sending it, as it does any answer.
    """

    json: str


class ConnectorFailure(Exception):
    """Raise from an operation to answer with an error envelope (HTTP 200, ok=false).

    ``user`` is shown to people: a string (English) or a mapping of language to text.
    """

    def __init__(
        self,
        code: p.ErrorCode,
        user: str | dict[str, str],
        technical: str = "",
        *,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.user = {"en": user} if isinstance(user, str) else dict(user)
        self.technical = technical
        self.retry_after = retry_after
        super().__init__(technical or next(iter(self.user.values()), code.value))


def _unsupported(operation: str) -> ConnectorFailure:
    return ConnectorFailure(
        p.ErrorCode.UNSUPPORTED_OPERATION,
        f"This connector does not support {operation}.",
        f"{operation} is not implemented by this connector",
    )


class Connector:
    """A Sync Connector. Each method receives the validated request and a :class:`Context`
    (the caller's language, and ``notice()`` for ok_with_info / warning answers) and returns the
    operation's data model, or :class:`EncodedData` holding it as JSON already. Operations left out
    answer ``unsupported_operation``."""

    name = "Unnamed connector"
    version = "0"
    # Protocol v1.1 capabilities this connector offers (protocol.Capability values), stated in its health answer.
    capabilities: frozenset[str] = frozenset()
    # Sends change notifications (v1.1, change_notifications); set by ConnectorApp for a connector naming it.
    notifier: Notifier | None = None

    def notifications_started(self, notifier: Notifier) -> None:
        """Called once by ConnectorApp for a connector that names ``change_notifications``, with the notifier that
        sends them. The SDK registers the notify URL of each SaveConnection with it; a connector that keeps its
        connections in a store of its own registers their URLs again here (``notifier.register``)."""
        self.notifier = notifier

    def notify_changed(
        self,
        connection_id: str | None = None,
        actor_type: p.ActorType | None = None,
        keys: Iterable[str] | None = None,
    ) -> None:
        """Tell the CRM that actors changed (without waiting): through ``connection_id`` (None: a change in the ERP
        itself, told to every connection), of ``actor_type`` with ``keys`` where known."""
        if self.notifier is not None:
            self.notifier.changed(actor_type, keys, None if connection_id is None else [connection_id])

    def get_config_data(self, request: p.GetConfigDataRequest, context: Context) -> p.FieldsData | EncodedData:
        raise _unsupported("GetConfigData")

    def test_config_data(self, request: p.TestConfigDataRequest, context: Context) -> p.Empty | EncodedData:
        raise _unsupported("TestConfigData")

    def save_connection(self, request: p.SaveConnectionRequest, context: Context) -> p.Empty | EncodedData:
        raise _unsupported("SaveConnection")

    def test_connection(self, request: p.TestConnectionRequest, context: Context) -> p.Empty | EncodedData:
        raise _unsupported("TestConnection")

    def delete_connection(self, request: p.DeleteConnectionRequest, context: Context) -> p.Empty | EncodedData:
        raise _unsupported("DeleteConnection")

    def get_supported_actor_types(
        self, request: p.GetSupportedActorTypesRequest, context: Context
    ) -> p.ActorTypesData | EncodedData:
        raise _unsupported("GetSupportedActorTypes")

    def get_supported_actor_type_fields(
        self, request: p.GetSupportedActorTypeFieldsRequest, context: Context
    ) -> p.FieldsData | EncodedData:
        raise _unsupported("GetSupportedActorTypeFields")

    def get_searchable_fields(
        self, request: p.GetSearchableFieldsRequest, context: Context
    ) -> p.FieldKeysData | EncodedData:
        raise _unsupported("GetSearchableFields")

    def get_actors(self, request: p.GetActorsRequest, context: Context) -> p.ActorsData | EncodedData:
        raise _unsupported("GetActors")

    def search_actors(self, request: p.SearchActorsRequest, context: Context) -> p.SearchData | EncodedData:
        raise _unsupported("SearchActors")

    def search_actors_advanced(
        self, request: p.SearchActorsAdvancedRequest, context: Context
    ) -> p.SearchData | EncodedData:
        raise _unsupported("SearchActorsAdvanced")

    def search_actor_by_parent(
        self, request: p.SearchActorByParentRequest, context: Context
    ) -> p.SearchData | EncodedData:
        raise _unsupported("SearchActorByParent")

    def create_actor(self, request: p.CreateActorRequest, context: Context) -> p.ActorData | EncodedData:
        raise _unsupported("CreateActor")

    def save_actors(self, request: p.SaveActorsRequest, context: Context) -> p.SaveActorsData | EncodedData:
        raise _unsupported("SaveActors")

    def get_list(self, request: p.GetListRequest, context: Context) -> p.ListData | EncodedData:
        raise _unsupported("GetList")

    def get_list_items(self, request: p.GetListItemsRequest, context: Context) -> p.ListData | EncodedData:
        raise _unsupported("GetListItems")

    def get_actors_by_timestamp(
        self, request: p.GetActorsByTimestampRequest, context: Context
    ) -> p.FeedData | EncodedData:
        raise _unsupported("GetActorsByTimestamp")


def method_name(operation: str) -> str:
    """GetActorsByTimestamp → get_actors_by_timestamp."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
