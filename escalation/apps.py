from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "escalation"
    verbose_name = "Live Escalation"

    def ready(self) -> None:
        from crm import hooks

        from .tasks import queue_analysis

        hooks.message_stored.connect(queue_analysis)
