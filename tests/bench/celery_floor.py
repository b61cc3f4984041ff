"""The bare Celery hop the floors benchmark measures: a Celery app with no Django, no models and no
database, run by a worker with the product's worker options on the product's broker.

The bench process (tests/bench/floors.py) reads the product app's settings and passes them in
``BENCH_CELERY_FLOOR_CONF`` (JSON), so this module imports neither Django nor ``config``:

    celery -A tests.bench.celery_floor worker -Q bench.floor ...

The task's first statement reads the clock and pushes it to a Redis list the bench reads; the
bench took its own clock just before publishing (one machine, one clock).
"""

from __future__ import annotations

import json
import os
import time

from celery import Celery

CONF_ENV = "BENCH_CELERY_FLOOR_CONF"
QUEUE = "bench.floor"
STARTS_KEY = "bench.floor.celery_hop.starts"
HOP_TASK = "bench.floor.hop"

# The options that decide how a task travels from publish to a pool process; the bench copies
# each from the product's Celery app (config.celery.app.conf).
PRODUCT_OPTIONS = (
    "broker_url",
    "broker_transport_options",
    "broker_connection_retry_on_startup",
    "broker_pool_limit",
    "task_acks_late",
    "task_reject_on_worker_lost",
    "worker_prefetch_multiplier",
    "task_serializer",
    "accept_content",
    "result_backend",
    "task_ignore_result",
)


def make_app(conf: dict) -> Celery:
    # fixups=[]: no Django fixup (it would set Django up and close connections around each task).
    app = Celery("bench_floor", fixups=[], set_as_current=False)
    app.conf.update(conf)
    app.conf.task_default_queue = QUEUE

    _redis = None

    @app.task(name=HOP_TASK)
    def hop(index: int) -> None:
        started = time.time()  # first: everything before this line is the hop
        nonlocal _redis
        if _redis is None:
            import redis

            _redis = redis.Redis.from_url(app.conf.broker_url)
        _redis.rpush(STARTS_KEY, json.dumps([index, started]))

    return app


app = make_app(json.loads(os.environ[CONF_ENV])) if CONF_ENV in os.environ else None
