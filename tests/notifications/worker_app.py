"""The project's Celery app for a test worker: tasks it queues itself (a reminder's emails, a
retry) go to the test's own queue, named by TEST_CELERY_QUEUE, not to the shared default."""

import os

from config.celery import app

app.conf.task_default_queue = os.environ["TEST_CELERY_QUEUE"]

__all__ = ["app"]
