"""End to end through a real Celery worker (Redis broker, PostgreSQL): a customer asking for a
person leads to exactly one escalation with reason ``request`` — also when the analysis task runs
twice for the same message."""

import pytest
from django.db import transaction

from config.celery import app as celery_app
from crm.models import Conversation
from crm.services import receive_customer_message
from escalation.models import Escalation, MessageAnalysis
from escalation.tasks import analyze_message
from tests.factories import ConversationFactory
from tests.notifications.real_services import CeleryWorker, free_port, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.real_celery,
    pytest.mark.redis,
    pytest.mark.postgres,
]


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):
    from django.db import connection

    if connection.vendor != "postgresql" or not celery_app.conf.broker_url.startswith("redis"):
        pytest.skip("needs PostgreSQL and Redis")  # conftest turns this into a failure on CI
    celery_worker = CeleryWorker(smtp_port=free_port())  # no agents here, so no email is sent
    celery_worker.start()
    try:
        yield celery_worker
    finally:
        celery_worker.stop()


@pytest.fixture(autouse=True)
def route_to_worker(worker):
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = worker.queue
    yield
    celery_app.conf.task_default_queue = previous


def _flush(worker):
    """The solo worker takes tasks in order: once a later message's analysis is stored, every
    task published before it has run."""
    marker = ConversationFactory()
    with transaction.atomic():
        message = receive_customer_message(conversation=marker, text="what are your hours?")
    wait_for(
        lambda: MessageAnalysis.objects.filter(message=message).exists(),
        timeout=30,
        what=f"the marker's analysis (worker log: {worker.log_path})",
    )


def test_asking_for_a_person_escalates_once_even_when_the_task_runs_twice(worker):
    conversation = ConversationFactory()
    with transaction.atomic():  # stored first; the analysis is queued on commit
        message = receive_customer_message(
            conversation=conversation, text="I want to speak to a person"
        )
    analyze_message.delay(message.id)  # the same task again: a redelivery or a duplicate publish

    escalation = wait_for(
        lambda: Escalation.objects.filter(conversation=conversation).first(),
        timeout=30,
        what=f"an escalation (worker log: {worker.log_path})",
    )
    _flush(worker)

    assert Escalation.objects.filter(conversation=conversation).count() == 1
    assert escalation.reason == "request"
    analysis = MessageAnalysis.objects.get(message=message)
    assert analysis.backend == "local"
    assert analysis.reason == "request" and analysis.should_escalate
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AWAITING_AGENT
