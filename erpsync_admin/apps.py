from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ErpsyncAdminConfig(AppConfig):
    name = "erpsync_admin"
    verbose_name = _("erpsync")
