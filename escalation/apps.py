from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "escalation"
    verbose_name = "Live Escalation"

    def ready(self) -> None:
        from crm import hooks

        from .routing import services as routing_services
        from .routing import tasks as _routing_tasks  # noqa: F401 - registers the Celery tasks
        from .tasks import queue_analysis, queue_place_updates

        hooks.message_stored.connect(queue_analysis)
        hooks.message_stored.connect(routing_services.record_follow_up_email)
        hooks.agent_replied.connect(routing_services.record_first_reply)
        hooks.agent_availability_changed.connect(routing_services.on_availability_changed)
        hooks.queue_changed.connect(queue_place_updates)
