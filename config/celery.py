import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("live_escalation")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic sweeps (run `celery -A config beat` beside the workers).
app.conf.beat_schedule = {
    "sweep-unanalysed-messages": {
        "task": "escalation.tasks.sweep_unanalysed_messages",
        "schedule": 30.0,
    },
    "remind-overdue-escalations": {
        "task": "escalation.tasks.remind_overdue_escalations",
        "schedule": 30.0,
    },
    "prune-old-notifications": {
        "task": "notifications.tasks.prune_old_notifications",
        "schedule": 3600.0,
    },
    "resend-stuck-provider-deliveries": {
        "task": "integrations.tasks.resend_stuck_deliveries",
        "schedule": 300.0,
    },
    "resend-stuck-webhook-deliveries": {
        "task": "integrations.tasks.resend_stuck_webhook_deliveries",
        "schedule": 300.0,
    },
    "requeue-unsent-notification-emails": {
        "task": "notifications.tasks.requeue_unsent_emails",
        "schedule": 60.0,
    },
}
