"""The address book with a configuration list that depends on other values (protocol v1.1, capability
config_list_values): the office of a connection is chosen from the offices of the owner entered, which the
connector shows only to someone who also gives the right token."""

from __future__ import annotations

from connectors import protocol as p
from connectors.sdk import ConnectorFailure, Context

from .tiny_connector import AddressBook

TOKEN = "open-sesame-42"
CONFIG: dict[str, p.Value] = {"owner": "Tests", "token": TOKEN, "office": "north"}
CONFIG_FIELDS = [
    p.FieldInfo(key="owner", label="Owner", type=p.FieldType.TEXT, access=p.FieldAccess.MANDATORY, max_length=40),
    p.FieldInfo(key="token", label="Token", type=p.FieldType.PASSWORD, access=p.FieldAccess.MANDATORY),
    p.FieldInfo(
        key="office",
        label="Office",
        type=p.FieldType.LIST,
        list_name="offices",
        access=p.FieldAccess.MANDATORY,
        depends_on=["owner", "token"],
        description="The owner's office whose customers this connection shows.",
    ),
]


def offices(owner: str) -> list[p.ListItem]:
    return [p.ListItem(key="north", text=f"{owner} Norr"), p.ListItem(key="south", text=f"{owner} Söder")]


class Offices(AddressBook):
    """``ignores_config`` is a variant broken on purpose: it names the capability, but reads a configuration list
    as if no values had been entered. ``calls`` keeps every configuration GetList's values, to see what was sent."""

    capabilities = frozenset({p.Capability.CONFIG_LIST_VALUES.value})

    def __init__(self, *, ignores_config: bool = False) -> None:
        super().__init__()
        self.ignores_config = ignores_config
        self.calls: list[dict[str, p.Value] | None] = []

    def get_config_data(self, request: p.GetConfigDataRequest, context: Context) -> p.FieldsData:
        return p.FieldsData(fields=CONFIG_FIELDS)

    def test_config_data(self, request: p.TestConfigDataRequest, context: Context) -> p.Empty:
        config = request.config
        if not config.get("owner") or not config.get("token"):
            raise ConnectorFailure(p.ErrorCode.INVALID_CONFIG, "Owner and token are required.")
        if config.get("office") not in {item.key for item in self._offices(dict(config), context)}:
            raise ConnectorFailure(
                p.ErrorCode.INVALID_CONFIG, {"en": "Choose an office.", "sv": "Välj ett kontor."}, "no office"
            )
        return p.Empty()

    def get_list(self, request: p.GetListRequest, context: Context) -> p.ListData:
        if request.connection_id is not None or request.list_name != "offices":
            raise ConnectorFailure(p.ErrorCode.UNKNOWN_LIST, f"No list {request.list_name!r}.")
        self.calls.append(request.config)
        if request.config is None or self.ignores_config:
            return p.ListData(items=[])  # a version 1 CRM sends no values: no offices can be named yet
        return p.ListData(items=self._offices(request.config, context))

    def get_list_items(self, request: p.GetListItemsRequest, context: Context) -> p.ListData:
        if request.connection_id is not None or request.list_name != "offices" or request.config is None:
            return p.ListData(items=[])
        items = {item.key: item for item in self._offices(request.config, context)}
        return p.ListData(items=[items[key] for key in request.keys if key in items])

    @staticmethod
    def _offices(config: dict[str, p.Value], context: Context) -> list[p.ListItem]:
        owner, token = config.get("owner"), config.get("token")
        if not owner or not token:
            raise ConnectorFailure(
                p.ErrorCode.INVALID_CONFIG,
                {"en": "Enter the owner and the token first.", "sv": "Ange ägaren och token först."},
            )
        if token != TOKEN:
            raise ConnectorFailure(
                p.ErrorCode.INVALID_CONFIG,
                {"en": "The token is wrong: no offices can be shown.", "sv": "Token är fel: inga kontor kan visas."},
            )
        return offices(str(owner))
