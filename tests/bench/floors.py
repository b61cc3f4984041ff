"""Floors: the least a relayed, stored message can cost on this machine, measured in the same run.

- one raw channels-redis ``group_send`` round trip (send to a group, receive on a member channel,
  same layer config as the product, loopback Redis);
- one PostgreSQL INSERT + COMMIT (psycopg, one row, one round trip each).

A product figure divided by the floor says how much the product adds on top of the two round
trips it cannot avoid.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
from django.conf import settings

from .harness import latency_summary


async def _layer_round_trips(count: int, progress) -> list[float]:
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
            progress.count(i + 1, count * 2)
    finally:
        await layer.group_discard(group, channel)
        close = getattr(layer, "close_pools", None)
        if close is not None:
            await close()
    return samples


def layer_round_trip(count: int, progress) -> list[float]:
    return asyncio.run(_layer_round_trips(count, progress))


def pg_insert_commit(count: int, progress) -> list[float]:
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
                progress.count(count + i - 9, count * 2)
        conn.execute("DROP TABLE bench_floor")
        conn.commit()
    return samples


def measure_floors(count: int, progress) -> dict:
    from .report import quantile_ladder

    layer_samples = layer_round_trip(count, progress)
    pg_samples = pg_insert_commit(count, progress)
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
        "combined": combined,
        "quantiles": ladder,
    }
