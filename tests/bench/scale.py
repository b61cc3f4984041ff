"""Sockets at scale: N connected customer sockets (5,000 by default) spread over 2 uvicorn
processes, with a Celery worker. Measured: server memory per socket (RSS growth of the uvicorn
processes, and Redis's), CPU while the sockets sit idle (keepalive pings only), and the handoff's
latency while they are all connected, beside the floor. Connecting is bounded in time; what
connected is reported."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from .harness import latency_summary
from .sockets import WARMUP_HANDOFFS, _handoff_phase, _open_customer, _r, _setup

WAVE = 250


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_group_bytes() -> int:
    """Memory of the channel layer's keys in the benchmark's Redis db (the server's own total
    counts every other db on it too)."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    return sum(client.memory_usage(key) or 0 for key in client.scan_iter(match="asgi*", count=1000))


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        soft = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def _connect(ports, conversations, deadline, progress):
    sockets, failures = [], 0
    for start in range(0, len(conversations), WAVE):
        if time.monotonic() > deadline:
            break
        wave = conversations[start : start + WAVE]
        opened = await asyncio.gather(
            *[_open_customer(ports[(start + i) % len(ports)], c) for i, c in enumerate(wave)],
            return_exceptions=True,
        )
        for result in opened:
            if isinstance(result, BaseException):
                failures += 1
            else:
                sockets.append(result)
        progress.count(len(sockets), len(conversations), "sockets connected")
    return sockets, failures


async def _scenario(ports, cookie, idle, handoff, *, args, pids, worker_pid, progress):
    out: dict = {}
    # Warm each process's code paths so the baseline is not its cold start.
    warm, _ = await _connect(ports, idle[:20], time.monotonic() + 60, progress)
    await asyncio.gather(*(ws.close() for ws in warm), return_exceptions=True)
    await asyncio.sleep(1)
    before = {pid: rss_kb(pid) for pid in pids}
    redis_before = redis_group_bytes()
    started = time.monotonic()
    sockets, failures = await _connect(
        ports, idle[20:], started + args.scale_connect_seconds, progress
    )
    out["connected"] = len(sockets)
    out["connect_failures"] = failures
    out["connect_seconds"] = round(time.monotonic() - started, 1)
    try:
        await asyncio.sleep(3)  # settle
        after = {pid: rss_kb(pid) for pid in pids}
        grown_kb = sum(after.values()) - sum(before.values())
        out["server_rss_mb_before"] = round(sum(before.values()) / 1024, 1)
        out["server_rss_mb_after"] = round(sum(after.values()) / 1024, 1)
        out["server_kb_per_socket"] = round(grown_kb / max(1, len(sockets)), 1)
        out["redis_kb_per_socket"] = round(
            (redis_group_bytes() - redis_before) / 1024 / max(1, len(sockets)), 2
        )
        # Idle: no frames but the servers' keepalive pings (every 20 s by default).
        watched = [*pids, worker_pid]
        cpu_before = {pid: cpu_seconds(pid) for pid in watched}
        own_before = time.process_time()
        idle_started = time.monotonic()
        await asyncio.sleep(args.scale_idle_seconds)
        elapsed = time.monotonic() - idle_started
        out["idle_seconds"] = round(elapsed, 1)
        out["idle_cpu_percent_of_a_core"] = {
            f"uvicorn {i + 1}": round((cpu_seconds(pid) - cpu_before[pid]) / elapsed * 100, 1)
            for i, pid in enumerate(pids)
        }
        out["idle_cpu_percent_of_a_core"]["celery worker"] = round(
            (cpu_seconds(worker_pid) - cpu_before[worker_pid]) / elapsed * 100, 1
        )
        out["idle_cpu_percent_of_a_core"]["bench client (the sockets' far ends)"] = round(
            (time.process_time() - own_before) / elapsed * 100, 1
        )
        total = len(handoff)
        samples, _customer, timeouts, _wall = await _handoff_phase(
            ports, cookie, handoff, progress, total
        )
        out["handoff_samples"] = samples
        out["handoff_timeouts"] = len(timeouts)
        out["still_open_after_handoffs"] = sum(1 for ws in sockets if ws.state.name == "OPEN")
    finally:
        for start in range(0, len(sockets), WAVE):
            await asyncio.gather(
                *(ws.close() for ws in sockets[start : start + WAVE]), return_exceptions=True
            )
    return out


def run_scale(*, args, services, progress, floors) -> dict:
    fd_limit = raise_fd_limit(args.scale_sockets + 2000)
    ports = services.start_servers(2, log_prefix="scale-uvicorn")
    services.start_worker(concurrency=args.workers)
    try:
        _channel, _agents, cookies, conversations = _setup(
            ports, conversations=args.scale_sockets + 20 + args.scale_handoffs + WARMUP_HANDOFFS
        )
        idle = conversations[: args.scale_sockets + 20]
        handoff = conversations[args.scale_sockets + 20 :]
        data = asyncio.run(
            _scenario(
                ports,
                cookies[0],
                idle,
                handoff,
                args=args,
                pids=services.server_pids(),
                worker_pid=services.worker.pid,
                progress=progress,
            )
        )
    finally:
        with contextlib.suppress(Exception):
            services.stop()
        connection.close()
    samples = data.pop("handoff_samples")
    latency = latency_summary(samples)
    floor = floors["combined"]
    data.update(
        {
            "sockets": args.scale_sockets,
            "processes": 2,
            "fd_limit": fd_limit,
            "handoff_latency": latency,
            "floor": floor,
            "handoff_ratio": {q: _r(latency[q], floor[q]) for q in ("p50", "p95", "p99")},
        }
    )
    idle_servers = sum(
        v for k, v in data["idle_cpu_percent_of_a_core"].items() if k.startswith("uvicorn")
    )
    data["headline"] = (
        f"{data['connected']} connected; {data['server_kb_per_socket']} KB/socket; idle CPU "
        f"{idle_servers:.1f}% of a core; handoff p95 {latency['p95']} ms"
    )
    return data
