"""Floors: the least a relayed, stored message can cost on this machine, measured in the same run.

- one raw channels-redis ``group_send`` round trip (send to a group, receive on a member channel,
  same layer config as the product, loopback Redis);
- one PostgreSQL INSERT + COMMIT (psycopg, one row, one round trip each);
- one bare Celery hop: a task published from this process until its body starts in a pool
  process of a worker with the product's broker, options and command line, but no Django, no
  models and no database (tests/bench/celery_floor.py).

A product figure divided by the floor says how much the product adds on top of the round trips
it cannot avoid. "combined" (group_send + insert/commit) is the floor of a stored, relayed
message; the handoff's stages add the Celery hop where they pay one (sockets.STAGE_FLOORS).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import psycopg
from django.conf import settings

from .celery_floor import HOP_TASK, STARTS_KEY, make_app
from .harness import Services, latency_summary

CELERY_HOP_WARMUP = 10
CELERY_HOP_TIMEOUT = 10.0  # one task; three of them missing end the measurement
CELERY_HOP_BUDGET = 60.0  # seconds for all hops: a slow machine gets fewer samples, not a hang


async def _layer_round_trips(count: int, progress, of: int) -> list[float]:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    group = "bench.floor"
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    samples = []
    try:
        for _ in range(10):  # warm the connection pool
            await layer.group_send(group, {"type": "bench.ping"})
            await layer.receive(channel)
        for i in range(count):
            started = time.perf_counter()
            await layer.group_send(group, {"type": "bench.ping", "n": i})
            await layer.receive(channel)
            samples.append((time.perf_counter() - started) * 1000)
            progress.count(i + 1, of)
    finally:
        await layer.group_discard(group, channel)
        close = getattr(layer, "close_pools", None)
        if close is not None:
            await close()
    return samples


def layer_round_trip(count: int, progress, *, of: int) -> list[float]:
    return asyncio.run(_layer_round_trips(count, progress, of))


def pg_insert_commit(count: int, progress, *, of: int) -> list[float]:
    db = settings.DATABASES["default"]
    params = {
        "host": db.get("HOST") or "127.0.0.1",
        "port": db.get("PORT") or 5432,
        "user": db.get("USER") or "postgres",
        "dbname": db["NAME"],
    }
    if db.get("PASSWORD"):
        params["password"] = db["PASSWORD"]
    samples = []
    with psycopg.connect(**params) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor "
            "(id bigserial PRIMARY KEY, text text NOT NULL, created_at timestamptz DEFAULT now())"
        )
        conn.commit()
        for i in range(count + 10):
            started = time.perf_counter()
            conn.execute("INSERT INTO bench_floor (text) VALUES (%s)", [f"floor {i}"])
            conn.commit()
            if i >= 10:  # the first few warm the plan cache
                samples.append((time.perf_counter() - started) * 1000)
                progress.count(count + i - 9, of)
        conn.execute("DROP TABLE bench_floor")
        conn.commit()
    return samples


def product_celery_options() -> dict:
    """The product app's settings that shape a task's trip (config/celery.py and settings)."""
    from config.celery import app

    from .celery_floor import PRODUCT_OPTIONS

    return {key: app.conf[key] for key in PRODUCT_OPTIONS}


def celery_hop(count: int, progress, *, log_dir: Path, concurrency: int, done: int, of: int):
    """Publish a task, wait until its body has started in the bare worker, one at a time (as
    the handoff benchmark sends its handoffs). Returns the samples (ms) and the worker's setup."""
    import redis

    options = product_celery_options()
    app = make_app(options)
    hop = app.tasks[HOP_TASK]
    store = redis.Redis.from_url(options["broker_url"])
    store.delete(STARTS_KEY)
    app.control.purge()
    env = dict(os.environ)
    env["BENCH_CELERY_FLOOR_CONF"] = json.dumps(options, default=list)
    worker = Services(env=env, log_dir=log_dir)
    samples: list[float] = []
    missed = 0
    try:
        worker.start_worker(
            concurrency=concurrency,
            app="tests.bench.celery_floor",
            queue=app.conf.task_default_queue,
            log_name="celery-floor-worker.log",
        )
        deadline = time.monotonic() + CELERY_HOP_BUDGET
        for i in range(count + CELERY_HOP_WARMUP):
            if time.monotonic() > deadline:
                break
            sent = time.time()
            hop.apply_async(args=[i])
            started = _hop_started(store, i)
            if started is None:
                missed += 1
                if missed >= 3:
                    raise RuntimeError(
                        f"the bare Celery worker ran no task within {CELERY_HOP_TIMEOUT:.0f} s "
                        f"three times (see {worker.worker_log})"
                    )
                continue
            if i >= CELERY_HOP_WARMUP:  # the first tasks import and connect in each pool process
                samples.append((started - sent) * 1000)
                progress.count(done + len(samples), of)
    finally:
        worker.stop()
        store.delete(STARTS_KEY)
        store.close()
    setup = {
        "pool": "prefork",
        "concurrency": concurrency,
        "acks_late": options["task_acks_late"],
        "prefetch_multiplier": options["worker_prefetch_multiplier"],
        "command_line": "--without-gossip --without-mingle --without-heartbeat",
        "warmup_excluded": CELERY_HOP_WARMUP,
        "samples_wanted": count,  # fewer in "count": the time budget ran out
        "timeouts": missed,
    }
    return samples, setup


def _hop_started(store, index: int) -> float | None:
    """The start time task ``index`` pushed; starts of earlier, timed-out tasks are dropped."""
    wait_until = time.monotonic() + CELERY_HOP_TIMEOUT
    while (left := wait_until - time.monotonic()) > 0:
        popped = store.blpop(STARTS_KEY, timeout=max(left, 0.01))
        if popped is None:
            return None
        popped_index, started = json.loads(popped[1])
        if popped_index == index:
            return started
    return None


def measure_floors(
    count: int, progress, *, log_dir: Path, celery_hops: int = 200, concurrency: int = 2
) -> dict:
    from .report import quantile_ladder

    of = count * 2 + celery_hops
    layer_samples = layer_round_trip(count, progress, of=of)
    pg_samples = pg_insert_commit(count, progress, of=of)
    # Last, so the worker's start-up does not share the cores with the two round trips above.
    hop_samples, hop_setup = celery_hop(
        celery_hops, progress, log_dir=log_dir, concurrency=concurrency, done=count * 2, of=of
    )
    layer, pg = latency_summary(layer_samples), latency_summary(pg_samples)
    # The floor at each percentile is the sum of the two round trips at that percentile.
    combined = {key: round(layer[key] + pg[key], 2) for key in ("p50", "p95", "p99")}
    ladder = [
        round(a + b, 3)
        for a, b in zip(quantile_ladder(layer_samples), quantile_ladder(pg_samples), strict=True)
    ]
    return {
        "group_send_round_trip": layer,
        "pg_insert_commit": pg,
        "celery_hop": {**latency_summary(hop_samples), "worker": hop_setup},
        "combined": combined,
        "quantiles": ladder,
    }
