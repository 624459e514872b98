from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = _("Monitoring")

    def ready(self) -> None:
        from connectors.client import observe_calls

        from . import checks, worker  # noqa: F401  (register the system checks and the worker's signal handlers)
        from .metrics import prepare_multiprocess_directory, record_connector_call

        prepare_multiprocess_directory()
        observe_calls(record_connector_call)
