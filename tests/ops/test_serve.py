"""`make serve`'s stack (honcho + Procfile: 2 uvicorn processes, a Celery worker, beat) on real
PostgreSQL and a throwaway Redis: ready, metrics added up across its processes, and a graceful
stop on SIGTERM."""

import asyncio

import pytest

from escalation.models import Escalation
from tests.faults.services import RedisServer, database_url_of_tests, wait_for
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
