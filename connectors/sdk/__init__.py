"""Write a Sync Connector in Python: subclass :class:`Connector`, implement the operations, serve it.

    from connectors.sdk import Connector, run

    class MyErp(Connector):
        name = "My ERP"
        def get_config_data(self, request, context): ...

    if __name__ == "__main__":
        run(MyErp())

The SDK handles HTTP, request signatures, validation of requests and answers, error envelopes and the
schema endpoint; a connector only deals in protocol models. No Django is involved.
"""

from .app import ConnectorApp, Context, EncodedData
from .base import Connector, ConnectorFailure
from .idempotency import CreatedKeys
from .notify import Notifier
from .runner import run, serve

__all__ = [
    "Connector",
    "ConnectorApp",
    "ConnectorFailure",
    "Context",
    "CreatedKeys",
    "EncodedData",
    "Notifier",
    "run",
    "serve",
]
