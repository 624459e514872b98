from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ErpsyncAdminConfig(AppConfig):
    name = "erpsync_admin"
    verbose_name = _("erpsync")

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
