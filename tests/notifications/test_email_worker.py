"""End to end: escalations become emails through a real Celery worker (Redis broker, PostgreSQL)
and a real SMTP server on loopback. One worker serves the module; each test has its own data."""

import uuid

import pytest
from django.db import transaction

from config.celery import app as celery_app
from escalation import tasks as escalation_tasks
from escalation.models import Escalation, Priority
from notifications.models import Notification
from notifications.tasks import send_notification_email

from .conftest import BOTH, EMAIL, IN_APP, OFFLINE
from .real_services import CeleryWorker, SMTPServer, free_port, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.real_celery,
    pytest.mark.redis,
    pytest.mark.postgres,
]


@pytest.fixture(scope="module")
def smtp_port():
    return free_port()


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, smtp_port):
    from django.db import connection

    if connection.vendor != "postgresql" or not celery_app.conf.broker_url.startswith("redis"):
        pytest.skip("needs PostgreSQL and Redis")  # conftest turns this into a failure on CI
    celery_worker = CeleryWorker(smtp_port=smtp_port)
    celery_worker.start()
    try:
        yield celery_worker
    finally:
        celery_worker.stop()


@pytest.fixture
def smtp(smtp_port):
    server = SMTPServer(smtp_port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def route_to_worker(worker):
    """Tasks this test publishes go to this module's worker only."""
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = worker.queue
    yield
    celery_app.conf.task_default_queue = previous


def _wait_emails(smtp, count, worker, timeout=30):
    wait_for(
        lambda: len(smtp.messages) >= count,
        timeout=timeout,
        what=f"{count} emails (worker log: {worker.log_path})",
    )


def _flush_worker(smtp, worker, make_agent):
    """The solo worker takes tasks in order: once a later email arrives, every task published
    before it has run."""
    marker = make_agent(f"marker-{uuid.uuid4().hex[:8]}", notify_via=EMAIL, availability=OFFLINE)
    before = len(smtp.messages)
    notification = Notification.objects.create(
        recipient=marker, kind="assigned", text="marker", dedupe_key="marker", email_requested=True
    )
    send_notification_email.delay(notification.pk)
    _wait_emails(smtp, before + 1, worker)
    smtp.clear()


def _parts(message):
    return {
        part.get_content_type(): part.get_content()
        for part in message.walk()
        if not part.is_multipart()
    }


def test_an_escalation_emails_each_agent_who_asked_once_and_notifies_in_app_per_preference(
    worker, smtp, team, make_agent, escalate, settings
):
    make_agent("ina", teams=[team], notify_via=IN_APP)
    make_agent("emma", teams=[team], notify_via=EMAIL)
    make_agent("bo", teams=[team], notify_via=BOTH)
    make_agent("olaf", teams=[team], notify_via=BOTH, availability=OFFLINE)

    escalation = escalate(team, contact_name="Jamie Patel", reason="request")

    _wait_emails(smtp, 2, worker)
    wait_for(
        lambda: Notification.objects.filter(emailed_at__isnull=False).count() == 2,
        timeout=10,
        what="emailed_at recorded",
    )
    _flush_worker(smtp, worker, make_agent)  # nothing else was on its way
    in_app = Notification.objects.filter(escalation=escalation, show_in_app=True)
    assert sorted(in_app.values_list("recipient__username", flat=True)) == ["bo", "ina"]

    emailed = Notification.objects.filter(escalation=escalation, emailed_at__isnull=False)
    assert sorted(emailed.values_list("recipient__username", flat=True)) == ["bo", "emma"]


def test_the_email_has_a_plain_and_an_html_part_with_what_the_agent_needs(
    worker, smtp, team, make_agent, escalate, settings
):
    make_agent("emma", teams=[team], notify_via=EMAIL)
    escalation = escalate(team, contact_name="Jamie Patel", reason="sentiment")
    _wait_emails(smtp, 1, worker)
    rcpts, message = smtp.messages[0]
    assert rcpts == ["emma@example.com"]
    assert "Jamie Patel" in message["Subject"]
    parts = _parts(message)
    assert set(parts) == {"text/plain", "text/html"}
    link = f"{settings.SITE_URL}/crm/conversations/{escalation.conversation_id}/"
    for body in parts.values():
        assert "Jamie Patel" in body
        assert "Frustration" in body  # the reason
        assert "Normal" in body  # the priority
        assert "charged twice for order 1042" in body  # the AI summary
        assert link in body
    assert f'href="{link}"' in parts["text/html"]


def test_an_smtp_outage_is_retried_and_the_email_arrives_once_the_server_is_back(
    worker, smtp, team, make_agent, escalate
):
    smtp.stop()  # the mail server is down when the escalation happens
    make_agent("emma", teams=[team], notify_via=EMAIL)
    escalation = escalate(team)
    # The handoff itself went through at once.
    assert Escalation.objects.get(pk=escalation.pk).status == "queued"

    failing = wait_for(
        lambda: Notification.objects.filter(email_attempts__gte=2, emailed_at=None).first(),
        timeout=30,
        what=f"two failed attempts (worker log: {worker.log_path})",
    )
    assert "refused" in failing.email_error.lower()

    smtp.start()
    _wait_emails(smtp, 1, worker, timeout=60)
    notification = wait_for(
        lambda: Notification.objects.filter(emailed_at__isnull=False).first(),
        timeout=10,
        what="emailed_at recorded",
    )
    assert notification.email_attempts >= 3
    assert notification.email_error == "" and notification.email_claim == ""
    _flush_worker(smtp, worker, make_agent)
    assert smtp.messages == []  # no second copy came after the first


def test_a_duplicated_task_sends_no_second_email(worker, smtp, make_agent):
    emma = make_agent("emma", notify_via=EMAIL)
    notification = Notification.objects.create(
        recipient=emma,
        kind="escalation",
        text="Someone needs an agent",
        dedupe_key="dup",
        email_requested=True,
    )
    # The same task three times (a duplicated publish, a redelivery), queued back to back.
    with transaction.atomic():
        for _ in range(3):
            transaction.on_commit(lambda: send_notification_email.delay(notification.pk))
    _wait_emails(smtp, 1, worker)
    assert smtp.recipients() == ["emma@example.com"]
    smtp.clear()
    _flush_worker(smtp, worker, make_agent)  # all three have run by now
    # ...and once more, long after it was sent.
    send_notification_email.delay(notification.pk)
    _flush_worker(smtp, worker, make_agent)
    notification.refresh_from_db()
    assert notification.emailed_at is not None
    assert notification.email_attempts == 1


def test_an_unclaimed_escalation_past_its_target_is_reminded_once_and_raised(
    worker, smtp, team, make_agent, escalate
):
    from django.utils import timezone

    make_agent("emma", teams=[team], notify_via=EMAIL)
    escalation = escalate(team)
    _wait_emails(smtp, 1, worker)
    smtp.clear()
    # It has waited longer than the team's target (60 s).
    Escalation.objects.filter(pk=escalation.pk).update(
        escalated_at=timezone.now() - timezone.timedelta(seconds=team.target_wait_seconds + 5)
    )

    # The beat task, twice within the same interval, through the worker.
    escalation_tasks.remind_overdue_escalations.delay()
    escalation_tasks.remind_overdue_escalations.delay()
    _wait_emails(smtp, 1, worker)
    _flush_worker(smtp, worker, make_agent)

    escalation.refresh_from_db()
    assert escalation.priority == Priority.HIGH
    reminders = Notification.objects.filter(escalation=escalation, kind="reminder")
    assert reminders.count() == 1
    assert reminders.get().emailed_at is not None
