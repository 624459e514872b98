from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self) -> None:
        # Importing the module registers its checks with Django's check framework.
        from . import checks  # noqa: F401
