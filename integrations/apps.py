from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        # Registers the token authentication with drf-spectacular's schema generator.
        from . import schema  # noqa: F401
