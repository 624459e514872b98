"""The Tryton connector's labels (protocol v1.1): English and Swedish for every field, actor type and
configuration field, Tryton's own translations where it has them; it passes the strict conformance kit."""

from __future__ import annotations

import uuid

from connectors import protocol as p
from connectors.client import ConnectorClient
from connectors.conformance import run_conformance

from ..conftest import RunningConnector
from .conftest import TrytonServer


def test_the_tryton_connector_passes_strict(
    tryton_server: TrytonServer, tryton_connector: RunningConnector, tryton_samples: dict[str, p.Actor]
) -> None:
    report = run_conformance(
        tryton_connector.url, tryton_connector.secret, tryton_server.config(), writable=False, strict=True
    )
    assert report.ok, "\n".join(line for line in report.lines() if not line.startswith("PASS"))
    assert "v1.1 labels: every label map has non-empty texts under language codes" in [
        check.name for check in report.checks if check.passed
    ]


def test_every_field_actor_type_and_configuration_field_has_a_swedish_label(
    tryton_server: TrytonServer, tryton_connector: RunningConnector
) -> None:
    with ConnectorClient(tryton_connector.url, tryton_connector.secret) as client:
        assert "labels" in client.health().capabilities
        config = client.get_config_data().data.fields
        assert all(info.labels and info.labels.get("sv") for info in config)
        assert {info.key: info.label_in("sv") for info in config}["database"] == "Databas"
        conn = client.connection(str(uuid.uuid4()), tryton_server.config)
        conn.save()
        try:
            answer = conn.actor_types_data()
            assert answer.labels is not None and answer.labels[p.ActorType.CUSTOMER]["sv"] == "Kund"
            for actor_type in answer.actor_types:
                fields = conn.actor_type_fields(actor_type)
                missing = [info.key for info in fields if not (info.labels or {}).get("sv")]
                assert not missing, (actor_type, missing)
            customer = {info.key: info.label_in("sv") for info in conn.actor_type_fields(p.ActorType.CUSTOMER)}
            assert (customer["NAME"], customer["COUNTRY"], customer["VATNO"]) == (
                "Namn",
                "Land",
                "Momsregistreringsnummer",
            )
        finally:
            conn.delete()
