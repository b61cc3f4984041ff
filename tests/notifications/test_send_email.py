"""Sending one notification's email: at most once under duplicates and races, errors recorded."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from notifications import services
from notifications.models import Notification
from notifications.services import EmailOutcome

from .conftest import EMAIL


def _notification(user, **fields):
    return Notification.objects.create(
        recipient=user,
        kind=fields.pop("kind", "escalation"),
        text="Jamie needs an agent",
        dedupe_key=fields.pop("dedupe_key", "k"),
        email_requested=fields.pop("email_requested", True),
        **fields,
    )


@pytest.mark.django_db
def test_a_second_send_of_the_same_notification_is_a_no_op(make_agent):
    notification = _notification(make_agent("emma", notify_via=EMAIL))
    assert services.send_notification_email(notification_id=notification.pk) == EmailOutcome.SENT
    again = services.send_notification_email(notification_id=notification.pk)
    assert again == EmailOutcome.ALREADY_SENT
    assert len(mail.outbox) == 1
    notification.refresh_from_db()
    assert notification.emailed_at is not None and notification.email_attempts == 1


@pytest.mark.django_db
def test_an_unrequested_or_deleted_notification_sends_nothing(make_agent):
    emma = make_agent("emma")
    unrequested = _notification(emma, email_requested=False)
    outcome = services.send_notification_email(notification_id=unrequested.pk)
    assert outcome == EmailOutcome.NOT_REQUESTED
    assert services.send_notification_email(notification_id=999999) == EmailOutcome.GONE
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_claim_held_by_a_live_attempt_blocks_and_a_lapsed_one_is_taken_over(make_agent):
    notification = _notification(
        make_agent("emma"), email_claim="other", email_claimed_at=timezone.now()
    )
    outcome = services.send_notification_email(notification_id=notification.pk)
    assert outcome == EmailOutcome.IN_PROGRESS
    assert mail.outbox == []
    # The worker holding it died: after the lease, the next attempt sends.
    Notification.objects.filter(pk=notification.pk).update(
        email_claimed_at=timezone.now() - services.EMAIL_CLAIM_LEASE - timedelta(seconds=1)
    )
    assert services.send_notification_email(notification_id=notification.pk) == EmailOutcome.SENT
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_an_smtp_failure_releases_the_claim_records_the_error_and_raises(make_agent, settings):
    notification = _notification(make_agent("emma"))
    settings.EMAIL_BACKEND = "tests.notifications.backends.RefusingBackend"
    with pytest.raises(ConnectionRefusedError):
        services.send_notification_email(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.emailed_at is None
    assert notification.email_claim == "" and notification.email_claimed_at is None
    assert notification.email_attempts == 1
    assert "Connection refused" in notification.email_error

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert services.send_notification_email(notification_id=notification.pk) == EmailOutcome.SENT
    notification.refresh_from_db()
    assert notification.email_attempts == 2 and notification.email_error == ""


@pytest.mark.django_db
def test_the_task_retries_with_backoff_on_smtp_and_network_errors():
    from smtplib import SMTPException

    from notifications.tasks import send_notification_email

    assert set(send_notification_email.autoretry_for) == {SMTPException, OSError}
    assert send_notification_email.retry_backoff is True
    assert send_notification_email.max_retries >= 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_concurrent_senders_of_one_notification_send_one_email(make_agent, settings):
    settings.EMAIL_BACKEND = "tests.notifications.backends.SlowBackend"
    notification = _notification(make_agent("emma"))
    outcomes, errors = [], []
    start = threading.Barrier(4)

    def send():
        try:
            start.wait()
            outcomes.append(services.send_notification_email(notification_id=notification.pk))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert outcomes.count(EmailOutcome.SENT) == 1
    assert set(outcomes) <= {EmailOutcome.SENT, EmailOutcome.IN_PROGRESS, EmailOutcome.ALREADY_SENT}
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_the_sweep_requeues_requested_emails_that_never_went_out(make_agent):
    emma = make_agent("emma")
    old = timezone.now() - timedelta(minutes=10)
    lost = _notification(emma, dedupe_key="lost")
    sent = _notification(emma, dedupe_key="sent", emailed_at=old)
    fresh = _notification(emma, dedupe_key="fresh")  # its task may still be on its way
    Notification.objects.filter(pk__in=[lost.pk, sent.pk]).update(created_at=old)

    assert services.requeue_unsent_emails() == 1  # eager: sent at once
    assert [m.to for m in mail.outbox] == [["emma@example.com"]]
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.emailed_at is not None and fresh.emailed_at is None


@pytest.mark.django_db
def test_the_sweep_leaves_a_task_that_is_still_retrying_alone(make_agent):
    emma = make_agent("emma")
    now = timezone.now()
    retrying = _notification(
        emma,
        dedupe_key="retrying",
        email_attempts=3,
        email_last_attempt_at=now - timedelta(minutes=5),
    )
    gave_up = _notification(
        emma,
        dedupe_key="gave-up",
        email_attempts=11,
        email_last_attempt_at=now - timedelta(minutes=20),
    )
    Notification.objects.filter(pk__in=[retrying.pk, gave_up.pk]).update(
        created_at=now - timedelta(hours=1)
    )
    assert services.requeue_unsent_emails() == 1
    gave_up.refresh_from_db()
    retrying.refresh_from_db()
    assert gave_up.emailed_at is not None and retrying.emailed_at is None


def test_the_beat_schedule_runs_the_prune_and_the_email_sweep():
    from config.celery import app

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {
        "notifications.tasks.prune_old_notifications",
        "notifications.tasks.requeue_unsent_emails",
    } <= tasks
    app.loader.import_default_modules()
    assert tasks <= set(app.tasks)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["escalation", "reminder"])
def test_an_alert_retried_after_its_escalation_was_picked_up_is_not_sent(
    kind, make_agent, escalate, team, settings
):
    from escalation import services as escalation_services

    agent = make_agent("ava", teams=[team])  # in-app only: escalating emails nobody
    escalation = escalate(team)
    emma = make_agent("emma", notify_via=EMAIL)
    notification = _notification(emma, kind=kind, escalation=escalation)
    settings.EMAIL_BACKEND = "tests.notifications.backends.RefusingBackend"
    with pytest.raises(ConnectionRefusedError):  # the SMTP outage: the task will retry
        services.send_notification_email(notification_id=notification.pk)

    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    outcome = services.send_notification_email(notification_id=notification.pk)

    assert outcome == EmailOutcome.SKIPPED
    assert mail.outbox == []
    notification.refresh_from_db()
    assert notification.emailed_at is None and notification.email_claim == ""
    assert notification.email_skipped_reason == "escalation claimed before the email went out"
    # Never tried again: not by a redelivered task, not by the sweep.
    again = services.send_notification_email(notification_id=notification.pk)
    assert again == EmailOutcome.SKIPPED
    Notification.objects.filter(pk=notification.pk).update(
        created_at=timezone.now() - timedelta(hours=1), email_last_attempt_at=None
    )
    assert services.requeue_unsent_emails() == 0
    assert mail.outbox == []


@pytest.mark.django_db
def test_an_alert_whose_escalation_is_still_queued_is_sent(make_agent, escalate, team):
    make_agent("ava", teams=[team])
    escalation = escalate(team)
    notification = _notification(make_agent("emma"), kind="reminder", escalation=escalation)
    assert services.send_notification_email(notification_id=notification.pk) == EmailOutcome.SENT
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_an_assigned_notification_is_sent_although_its_escalation_is_claimed(
    make_agent, escalate, team
):
    from escalation import services as escalation_services

    agent = make_agent("ava", teams=[team])
    escalation = escalate(team)
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    notification = _notification(
        make_agent("emma"), kind="assigned", escalation=escalation, dedupe_key="assigned"
    )
    assert services.send_notification_email(notification_id=notification.pk) == EmailOutcome.SENT
    assert len(mail.outbox) == 1
