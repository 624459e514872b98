from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConnectionsConfig(AppConfig):
    name = "connections"
    verbose_name = _("ERP connections")

    def ready(self) -> None:
        # Wiring, once the apps are loaded: the ERP tab into the CRM's record pages, and what performs each
        # kind of run into the job machinery (sync runs; the import registers as its module loads).
        from django.db.models.signals import post_save

        from crm.models import Company, Contact, Project

        from . import importing  # noqa: F401
        from .erp_tab import register
        from .notifications import record_saved
        from .sync import reconcile, runs, undo  # noqa: F401

        register()
        # A linked record saved (edit form, Django admin) syncs its links within seconds (protocol v1.1's
        # near-real-time sync); a sync's own writes do not.
        for model in (Company, Contact, Project):
            post_save.connect(record_saved, sender=model, dispatch_uid=f"erpsync-sync-on-save-{model.__name__}")
