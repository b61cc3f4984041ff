"""Throughput ceiling: the offered rate of customer messages is raised step by step until the
p99 of "sent -> stored and delivered to the watching agent" passes 100 ms, on 1 and on 2 uvicorn
processes; in the same run the same ramp drives a bare Channels relay (``relay_app.py``: frame
in -> group_send -> frame out, no database) as the ceiling's floor.

Each step offers ``rate`` messages per second for ``STEP_SECONDS``, spread over the senders at a
fixed schedule, then waits (bounded) for stragglers; a message not delivered by then counts as
infinitely late. A step passes when its p99 is within the limit and the client really sent at
least 90 % of the offered rate (otherwise the client, not the server, is the limit and the ramp
stops, saying so). The ceiling is the highest passing rate; the next step (x RAMP_FACTOR) failed,
so the resolution is that factor. Every loop is bounded in count and time; loopback only.

The product's messages queue their analysis in Redis; the Celery worker is not running during
the ramp (as in the load benchmark), so the figure is the ASGI processes' store-and-relay ceiling.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid

from django.db import connection
from websockets.asyncio.client import connect

from .harness import latency_summary, percentile
from .sockets import _open_agent, _open_customer

P99_LIMIT_MS = 100.0
RAMP_START = 10.0
RAMP_FACTOR = 1.4
MAX_STEPS = 18
MAX_RATE = 6000.0
DRAIN_SECONDS = 3.0
SENDERS = 40
NOT_DELIVERED = 1e12  # a message still missing after the drain: later than any limit


async def _read_forever(ws, on_frame):
    try:
        async for raw in ws:
            on_frame(raw, time.perf_counter())
    except Exception:  # closed: the step's accounting shows what did not arrive
        return


async def _step(senders, rate, seconds, arrived, make_frame) -> dict:
    step_id = uuid.uuid4().hex[:6]
    total = max(1, int(rate * seconds))
    sent_at: dict[str, float] = {}
    started = time.perf_counter()
    for k in range(total):
        due = started + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        token = f"{step_id}-{k}"
        sent_at[token] = time.perf_counter()
        try:
            await senders[k % len(senders)].send(make_frame(token))
        except Exception:
            sent_at.pop(token, None)
    send_seconds = time.perf_counter() - started
    deadline = time.perf_counter() + DRAIN_SECONDS
    while time.perf_counter() < deadline and any(t not in arrived for t in sent_at):
        await asyncio.sleep(0.05)
    latencies = [(arrived[t] - s) * 1000 if t in arrived else math.inf for t, s in sent_at.items()]
    delivered = [v for v in latencies if v != math.inf]
    p99 = percentile(latencies, 0.99)
    achieved = len(sent_at) / send_seconds if send_seconds else 0.0
    return {
        "offered_per_second": round(rate, 1),
        "sent_per_second": round(achieved, 1),
        "sent": len(sent_at),
        "delivered": len(delivered),
        "p50": round(percentile(delivered, 0.5), 2) if delivered else None,
        "p99": None if p99 is None or p99 == math.inf else round(p99, 2),
        "latency": latency_summary(delivered),
        "client_kept_up": achieved >= 0.9 * rate,
        "passed": p99 is not None and p99 <= P99_LIMIT_MS and achieved >= 0.9 * rate,
    }


async def _ramp(senders, arrived, make_frame, *, step_seconds, budget_seconds, progress, label):
    # Warm-up, not counted: each process's first store, publish and send open their connections.
    await _step(senders, RAMP_START / 2, 2.0, arrived, make_frame)
    steps = []
    rate = RAMP_START
    ramp_started = time.monotonic()
    for index in range(MAX_STEPS):
        if rate > MAX_RATE or time.monotonic() - ramp_started > budget_seconds:
            break
        result = await _step(senders, rate, step_seconds, arrived, make_frame)
        steps.append(result)
        progress.count(
            index + 1,
            MAX_STEPS,
            f"{label}: {rate:.0f}/s offered, p99 {result['p99']} ms, "
            f"{'pass' if result['passed'] else 'FAIL'}",
        )
        if not result["passed"]:
            break
        rate *= RAMP_FACTOR
    passed = [s for s in steps if s["passed"]]
    last = steps[-1] if steps else None
    return {
        "ceiling_per_second": passed[-1]["offered_per_second"] if passed else 0.0,
        "limited_by": (
            "nothing: the ramp ran out of steps or time"
            if last is None or last["passed"]
            else "the client (it could not send the offered rate)"
            if not last["client_kept_up"]
            else f"p99 over {P99_LIMIT_MS:.0f} ms"
        ),
        "steps": steps,
    }


async def _relay_ramp(ports, *, step_seconds, budget_seconds, progress, label):
    arrived: dict[str, float] = {}
    rooms = SENDERS
    senders, receivers = [], []
    for room in range(rooms):
        send_port, receive_port = ports[room % len(ports)], ports[(room + 1) % len(ports)]
        receivers.append(
            await connect(
                f"ws://127.0.0.1:{receive_port}/relay/{room}/", max_queue=None, ping_interval=None
            )
        )
        senders.append(
            await connect(
                f"ws://127.0.0.1:{send_port}/relay/{room}/", max_queue=None, ping_interval=None
            )
        )

    def on_receiver_frame(raw, at):
        arrived.setdefault(json.loads(raw)["text"], at)

    return await _read_and_ramp(
        senders,
        receivers,
        on_receiver_frame,
        arrived,
        settle_seconds=0.5,  # every group_add done
        step_seconds=step_seconds,
        budget_seconds=budget_seconds,
        progress=progress,
        label=label,
    )


async def _product_ramp(
    ports, cookie, conversations, *, step_seconds, budget_seconds, progress, label
):
    arrived: dict[str, float] = {}
    watchers = [await _open_agent(port, cookie) for port in ports]
    for index, conversation in enumerate(conversations):
        watcher = watchers[(index + 1) % len(watchers)]  # across processes when there are two
        await watcher.send(
            json.dumps({"type": "subscribe", "conversation": conversation.pk, "after": 0})
        )
    customers = [
        await _open_customer(ports[index % len(ports)], conversation)
        for index, conversation in enumerate(conversations)
    ]

    def on_watcher_frame(raw, at):
        frame = json.loads(raw)
        if frame.get("type") == "message.created" and frame["message"]["sender"] == "customer":
            arrived.setdefault(frame["message"]["text"], at)

    return await _read_and_ramp(
        customers,
        watchers,
        on_watcher_frame,
        arrived,
        settle_seconds=1.0,  # every subscribe answered
        step_seconds=step_seconds,
        budget_seconds=budget_seconds,
        progress=progress,
        label=label,
    )


async def _read_and_ramp(senders, watchers, on_watcher_frame, arrived, *, settle_seconds, **ramp):
    """Read every socket (the watchers' frames timed, the senders' drained), let the joins
    settle, ramp, then close them all."""
    tasks = [asyncio.create_task(_read_forever(ws, on_watcher_frame)) for ws in watchers]
    tasks += [asyncio.create_task(_read_forever(ws, lambda raw, at: None)) for ws in senders]
    try:
        await asyncio.sleep(settle_seconds)
        return await _ramp(
            senders, arrived, lambda token: json.dumps({"type": "message", "text": token}), **ramp
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in senders + watchers), return_exceptions=True)


def run_ceiling(*, args, services, progress) -> dict:
    """Four ramps, each on fresh servers: relay x1, product x1, relay x2, product x2."""
    from .sockets import _setup

    out: dict = {"p99_limit_ms": P99_LIMIT_MS, "ramp_factor": RAMP_FACTOR, "processes": {}}
    for processes in (1, 2):
        figures = {}
        for kind in ("relay", "product"):
            app = (
                "tests.bench.relay_app:application"
                if kind == "relay"
                else ("config.asgi:application")
            )
            ports = services.start_servers(processes, app=app, log_prefix=f"ceiling-{kind}")
            try:
                label = f"{kind} x{processes}"
                if kind == "relay":
                    figures[kind] = asyncio.run(
                        _relay_ramp(
                            ports,
                            step_seconds=args.ceiling_step_seconds,
                            budget_seconds=args.ceiling_budget_seconds,
                            progress=progress,
                            label=label,
                        )
                    )
                else:
                    channel, _agents, cookies, conversations = _setup(ports, conversations=SENDERS)
                    figures[kind] = asyncio.run(
                        _product_ramp(
                            ports,
                            cookies[0],
                            conversations,
                            step_seconds=args.ceiling_step_seconds,
                            budget_seconds=args.ceiling_budget_seconds,
                            progress=progress,
                            label=label,
                        )
                    )
            finally:
                services.stop()
                connection.close()
        relay, product = (
            figures["relay"]["ceiling_per_second"],
            figures["product"]["ceiling_per_second"],
        )
        figures["ratio_product_to_relay"] = round(product / relay, 2) if relay else None
        out["processes"][str(processes)] = figures
    one, two = out["processes"]["1"], out["processes"]["2"]
    out["headline"] = (
        f"product {one['product']['ceiling_per_second']:.0f}/s vs relay "
        f"{one['relay']['ceiling_per_second']:.0f}/s on 1 process; "
        f"{two['product']['ceiling_per_second']:.0f}/s vs "
        f"{two['relay']['ceiling_per_second']:.0f}/s on 2"
    )
    return out
