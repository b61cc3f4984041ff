from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        # Registers the token authentication with drf-spectacular's schema generator.
        from crm import hooks

        from . import schema  # noqa: F401
        from .payloads import emit_message_created
        from .senders import schedule_delivery

        hooks.message_stored.connect(emit_message_created)
        hooks.message_stored.connect(schedule_delivery)
