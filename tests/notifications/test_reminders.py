"""An escalation nobody picks up past the team's target wait is reminded and raised, once per
interval (the beat task escalation.tasks.remind_overdue_escalations)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from escalation import services as escalation_services
from escalation.models import Escalation, Priority
from escalation.tasks import remind_overdue_escalations
from notifications.models import Notification

from .conftest import BOTH, OFFLINE

pytestmark = pytest.mark.django_db


def _waited(escalation, seconds):
    Escalation.objects.filter(pk=escalation.pk).update(
        escalated_at=timezone.now() - timedelta(seconds=seconds)
    )


def _reminders(escalation):
    return Notification.objects.filter(escalation=escalation, kind=Notification.Kind.REMINDER)


def test_past_its_target_it_is_reminded_once_and_raised_one_level(
    team, make_agent, escalate, django_capture_on_commit_callbacks
):
    make_agent("bo", teams=[team], notify_via=BOTH)
    escalation = escalate(team, priority=Priority.NORMAL)
    mail.outbox.clear()
    _waited(escalation, team.target_wait_seconds + 1)

    with django_capture_on_commit_callbacks(execute=True):
        assert remind_overdue_escalations.delay().get() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert remind_overdue_escalations.delay().get() == 0  # same interval: nothing

    escalation.refresh_from_db()
    assert escalation.priority == Priority.HIGH
    reminder = _reminders(escalation).get()
    assert reminder.recipient.username == "bo"
    assert reminder.show_in_app and reminder.emailed_at is not None
    assert "Still waiting" in reminder.text and "high" in reminder.text
    assert len(mail.outbox) == 1 and "Still waiting" in mail.outbox[0].subject


def test_before_its_target_nothing_happens(team, make_agent, escalate):
    make_agent("bo", teams=[team])
    escalation = escalate(team)
    _waited(escalation, team.target_wait_seconds - 10)
    assert remind_overdue_escalations() == 0
    escalation.refresh_from_db()
    assert escalation.priority == Priority.NORMAL
    assert not _reminders(escalation).exists()


def test_a_next_interval_reminds_again_up_to_urgent(team, make_agent, escalate):
    make_agent("bo", teams=[team])
    escalation = escalate(team, priority=Priority.HIGH)
    _waited(escalation, team.target_wait_seconds * 3)
    assert remind_overdue_escalations() == 1
    Escalation.objects.filter(pk=escalation.pk).update(
        last_reminded_at=timezone.now() - timedelta(seconds=team.target_wait_seconds + 1)
    )
    assert remind_overdue_escalations() == 1
    escalation.refresh_from_db()
    assert escalation.priority == Priority.URGENT
    assert _reminders(escalation).count() == 2


def test_a_claimed_escalation_is_not_reminded(team, make_agent, escalate):
    bo = make_agent("bo", teams=[team])
    escalation = escalate(team)
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=bo)
    _waited(escalation, team.target_wait_seconds * 2)
    assert remind_overdue_escalations() == 0
    assert not _reminders(escalation).exists()


def test_a_reminder_with_nobody_available_emails_the_team_and_managers(
    team, make_agent, escalate, django_capture_on_commit_callbacks
):
    bo = make_agent("bo", teams=[team])
    escalation = escalate(team)
    bo.agent_profile.availability = OFFLINE
    bo.agent_profile.save()
    mail.outbox.clear()
    _waited(escalation, team.target_wait_seconds + 1)
    with django_capture_on_commit_callbacks(execute=True):
        remind_overdue_escalations()
    reminder = _reminders(escalation).get()
    assert reminder.is_fallback and reminder.email_requested
    assert [m.to for m in mail.outbox] == [["bo@example.com"]]
