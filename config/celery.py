import os
import time

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("live_escalation")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's Django fixup closes every database connection before and after each task unless this
# is set, so every task paid a new PostgreSQL connection (a backend fork, authentication, cold
# catalog caches) before its first query: the largest avoidable cost of a handoff
# (docs/performance.md). Tasks keep their connection now, handled as Django handles requests
# (see _reuse_database_connection).
app.conf["CELERY_DB_REUSE_MAX"] = 10**9

# Periodic sweeps (run `celery -A config beat` beside the workers).
app.conf.beat_schedule = {
    "sweep-unanalysed-messages": {
        "task": "escalation.tasks.sweep_unanalysed_messages",
        "schedule": 30.0,
    },
    "announce-queue-places": {
        "task": "escalation.tasks.announce_queue_places",
        "schedule": 60.0,
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
    # Routing (escalation/routing/tasks.py): offer timeouts, pushes, ageing, SLA breaches.
    "expire-offers": {"task": "escalation.routing.tasks.expire_offers", "schedule": 5.0},
    "route-waiting-escalations": {
        "task": "escalation.routing.tasks.route_waiting_escalations",
        "schedule": 15.0,
    },
    "age-priorities": {"task": "escalation.routing.tasks.age_priorities", "schedule": 30.0},
    "mark-sla-breaches": {"task": "escalation.routing.tasks.mark_sla_breaches", "schedule": 15.0},
    "requeue-unsent-notification-emails": {
        "task": "notifications.tasks.requeue_unsent_emails",
        "schedule": 60.0,
    },
}


# --- Operations: log context and metrics for every task (config/ops.py, crm/metrics.py) ---------
@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _log_with_context(logger=None, **kwargs):
    """Celery's own handlers get the request/conversation ids and, like the web, JSON lines."""
    from django.conf import settings

    from crm.logcontext import ContextFilter

    for handler in logger.handlers:
        handler.addFilter(ContextFilter())
        if settings.LOG_FORMAT == "json":
            from pythonjsonlogger.json import JsonFormatter

            handler.setFormatter(
                JsonFormatter(
                    "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s "
                    "%(conversation_id)s %(process)d",
                    rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                )
            )


# task id -> (start, context tokens); reset, not cleared, so an eager task inside a request
# gives the request its own ids back.
_running: dict[str, tuple] = {}


@signals.task_prerun.connect
def _task_context(task_id=None, task=None, **kwargs):
    from crm import logcontext

    _running[task_id] = (
        time.perf_counter(),
        logcontext.request_id.set(f"task-{task_id}"),
        logcontext.conversation_id.set(None),
    )


@signals.task_postrun.connect
def _task_done(task_id=None, task=None, state=None, **kwargs):
    from crm import logcontext, metrics

    outcome = {"SUCCESS": "succeeded", "FAILURE": "failed", "RETRY": "retried"}.get(state)
    if outcome:
        metrics.task_runs.labels(task.name, outcome).inc()
    running = _running.pop(task_id, None)
    if running is None:
        return
    started, id_token, conversation_token = running
    metrics.task_duration.labels(task.name).observe(time.perf_counter() - started)
    try:
        logcontext.request_id.reset(id_token)
        logcontext.conversation_id.reset(conversation_token)
    except ValueError:  # set in another context (not the case for workers or eager runs)
        pass


@signals.worker_process_init.connect
def _send_broadcasts_inline(**kwargs):
    """A pool process sends its after-commit events itself, the agent's queue.added first
    (crm.realtime.inline_sends says why)."""
    from crm import realtime

    realtime.inline_sends = True


@signals.worker_process_init.connect
def _warm_up_detector(**kwargs):
    """Each pool process loads the detector's models before its first task, not during it."""
    from config.scheduler import warm_up_detector

    warm_up_detector()


@signals.worker_process_shutdown.connect
def _forget_pool_process(pid=None, **kwargs):
    from config.ops import forget_process

    forget_process(pid)


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _send_last_broadcasts(**kwargs):
    """A pool process may end without running atexit: its outbox goes out first."""
    from crm.realtime import flush_sends

    flush_sends()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _reuse_database_connection(task=None, **kwargs):
    """As Django does around each request: close a connection past CONN_MAX_AGE, left in a
    transaction or broken by an error, and have the next query check a reused one first
    (CONN_HEALTH_CHECKS). Never for an eager task: it runs inside its caller's transaction."""
    if task is not None and not getattr(task.request, "is_eager", False):
        from django.db import close_old_connections

        close_old_connections()
