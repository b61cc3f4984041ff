"""`make serve`'s stack (honcho + Procfile: 2 uvicorn processes, a Celery worker, beat) on real
PostgreSQL and a throwaway Redis: ready, metrics added up across its processes, and a graceful
stop on SIGTERM, to honcho or to `make serve` itself."""

import asyncio
import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

from escalation.models import Escalation
from tests.faults.services import (
    REPO,
    RedisServer,
    database_url_of_tests,
    free_port,
    port_open,
    product_env,
    wait_for,
)
from tests.faults.sockets import open_customer

from .stack import Node, metric_value

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.real_celery,
]

RUNS = 'le_celery_task_runs_total{outcome="succeeded",task="escalation.tasks.analyze_message"}'


async def handoff(port, conversation) -> tuple[str, str]:
    customer = await open_customer(port, conversation)
    await customer.send({"type": "message", "text": "I want to speak to a person"})
    await customer.wait_for(
        lambda f: f["type"] == "conversation.mode" and f["mode"] == "awaiting_agent",
        "the handoff (mode awaiting_agent) from the worker",
        timeout=45,
    )
    return customer


def test_the_stack_is_ready_reports_across_processes_and_stops_gracefully(
    conversation, need_redis_server
):
    redis = RedisServer().start()
    node = Node(env={"DATABASE_URL": database_url_of_tests(), "REDIS_URL": redis.url()})
    try:
        node.start()
        status, body = node.get("/readyz")
        assert status == 200, body

        async def scenario():
            customer = await handoff(node.port, conversation)
            # the worker times the handoff after its broadcasts, so just after the customer saw it
            with_socket = wait_for(
                lambda: (
                    (text := node.metrics())
                    and metric_value(text, "le_handoff_latency_seconds_count") == 1.0
                    # counted after the task returns, a moment after the timing
                    and metric_value(text, RUNS) == 1.0
                    and text
                ),
                timeout=10,
                what="the worker's handoff timing in /metrics",
            )
            await customer.close()
            return with_socket

        with_socket = asyncio.run(scenario())
        # Two uvicorn processes and the worker's pool write their own files; any process's
        # /metrics adds them up.
        assert metric_value(with_socket, 'le_open_sockets{kind="customer"}') == 1.0
        assert metric_value(with_socket, "le_handoff_latency_seconds_count") == 1.0
        escalation = Escalation.objects.get(conversation=conversation)
        assert escalation.status == Escalation.Status.QUEUED
        priority = escalation.get_priority_display().lower()
        assert metric_value(with_socket, f'le_queue_depth{{priority="{priority}",team=""}}') == 1
        assert metric_value(with_socket, RUNS) == 1.0
        # the socket closed: its process takes it off the gauge (once it has seen the close)
        wait_for(
            lambda: metric_value(node.metrics(), 'le_open_sockets{kind="customer"}') == 0.0,
            timeout=10,
            what="the closed socket to leave le_open_sockets",
        )

        exit_code = node.stop()
        log = node.log()
        assert exit_code == 143, log[-3000:]  # honcho's own code for "stopped by SIGTERM"
        for process in ("web.1", "worker.1", "beat.1"):
            assert f"{process} stopped (rc=0)" in log, log[-3000:]
        assert "Warm shutdown" in log
    finally:
        node.kill()
        redis.stop()


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (honcho starts each of its processes in a session of its own,
    so a process group would miss them)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose; its parent has not reaped it yet
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def test_a_sigterm_to_make_serve_stops_the_whole_stack_gracefully(need_redis_server, tmp_path):
    """What a supervisor does to the command it started: before honcho replaced make's shell,
    the shell died and the stack went on running, orphaned, on its port."""
    redis = RedisServer().start()
    port = free_port()
    log_path = tmp_path / "make-serve.log"
    env = product_env(
        DATABASE_URL=database_url_of_tests(),
        REDIS_URL=redis.url(),
        WEB_CONCURRENCY="2",  # one process re-raises SIGTERM after its graceful stop: rc -15
        CELERY_CONCURRENCY="1",
        LOG_LEVEL="INFO",
    )
    with open(log_path, "wb") as log:
        make = subprocess.Popen(
            [
                "make",
                "--no-print-directory",
                "serve",
                f"PORT={port}",
                f"METRICS_DIR={tmp_path / 'metrics'}",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack: set[int] = set()
    try:
        wait_for(
            lambda: (
                make.poll() is None
                and " ready." in log_path.read_text(errors="replace")
                and port_open(port)
            ),
            timeout=120,
            what="make serve to be up (worker ready, web listening)",
        )
        stack = descendants(make.pid)
        assert len(stack) >= 4, stack  # honcho, uvicorn, the worker and beat at least

        make.send_signal(signal.SIGTERM)
        make.wait(timeout=30)
        text = log_path.read_text(errors="replace")
        for process in ("web.1", "worker.1", "beat.1"):
            assert f"{process} stopped (rc=0)" in text, text[-3000:]
        assert "Warm shutdown" in text
        left = {pid for pid in stack if alive(pid)}
        assert not left, f"still running after make exited: {left}"
        assert not port_open(port)
    finally:
        for pid in {make.pid} | stack:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            make.wait(timeout=10)
        redis.stop()
