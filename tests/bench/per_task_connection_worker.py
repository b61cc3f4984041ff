"""An experiment, not the product: the product's Celery app with Celery's default database
handling restored (its Django fixup closes every connection before and after each task, so each
task opens a new PostgreSQL connection). The A/B for what reusing the connection saves:

    python -m tests.bench --only handoff --worker-app tests.bench.per_task_connection_worker
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from config.celery import app  # noqa: E402

app.conf["CELERY_DB_REUSE_MAX"] = None

__all__ = ["app"]
