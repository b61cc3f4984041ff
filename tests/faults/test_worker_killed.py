"""A Celery worker killed with SIGKILL in the middle of analysing a message: after a restart the
message is analysed exactly once, whichever recovery path gets there first (Redis handing the
unacknowledged task out again, or the sweep of unanalysed messages), and both run."""

import pytest
from celery import Celery

from crm.models import Message
from escalation.models import Escalation, EscalationEvent, MessageAnalysis

from .services import RedisServer, database_url_of_tests, product_env, start_worker, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.real_celery,
]

FAULT_APP = "tests.faults.fault_worker_app"


def succeeded_analyses(worker) -> int:
    return sum(
        1
        for line in worker.log().splitlines()
        if "escalation.tasks.analyze_message[" in line and " succeeded " in line
    )


def test_worker_killed_mid_analysis_analyses_exactly_once_after_restart(
    tmp_path, conversation, need_redis_server
):
    redis = RedisServer().start()
    first = second = None
    try:
        env = product_env(
            DATABASE_URL=database_url_of_tests(),
            REDIS_URL=redis.url(),
            ANALYSIS_SWEEP_AFTER_SECONDS="1",
            FAULT_VISIBILITY_TIMEOUT="3",
        )
        message = Message.objects.create(
            conversation=conversation,
            channel=conversation.channel,
            sender=Message.Sender.CUSTOMER,
            text="I want to speak to a person",
        )
        publisher = Celery(broker=redis.url(), set_as_current=False)
        marker = tmp_path / "detection-started"
        first = start_worker(
            {**env, "FAULT_DETECT_DELAY": "120", "FAULT_MARKER": str(marker)}, app=FAULT_APP
        )
        publisher.send_task("escalation.tasks.analyze_message", args=[message.pk])
        wait_for(marker.exists, timeout=60, what="the analysis to start in the first worker")
        first.kill9()  # mid-analysis: detection is running, nothing is committed yet
        assert not MessageAnalysis.objects.filter(message=message).exists()

        second = start_worker(env, app=FAULT_APP)
        publisher.send_task("escalation.tasks.sweep_unanalysed_messages")
        # The sweep queues a copy only if it runs before the redelivered task has stored the
        # analysis, and which comes first depends on the machine's load; this copy stands for
        # the sweep's, so that two deliveries always race whatever the order.
        publisher.send_task("escalation.tasks.analyze_message", args=[message.pk])
        wait_for(
            lambda: MessageAnalysis.objects.filter(message=message).exists(),
            timeout=60,
            what="the message to be analysed after the restart",
        )
        # Both recovery paths deliver the task: the sweep's copy and Redis's redelivery of the
        # one the killed worker never acknowledged. Wait until both have run.
        wait_for(
            lambda: succeeded_analyses(second) >= 2,
            timeout=60,
            what="the redelivered task and the sweep's task to both run",
        )
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
        redis.stop()

    assert MessageAnalysis.objects.filter(message=message).count() == 1
    escalations = Escalation.objects.filter(conversation=conversation)
    assert escalations.count() == 1
    assert (
        EscalationEvent.objects.filter(
            escalation__conversation=conversation, kind=EscalationEvent.Kind.ESCALATED
        ).count()
        == 1
    )
    handoff_notices = Message.objects.filter(
        conversation=conversation, sender=Message.Sender.SYSTEM
    )
    assert handoff_notices.count() == 1
