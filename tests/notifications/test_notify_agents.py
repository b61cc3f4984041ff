"""Escalations reach the right people, in-app and/or by email as each prefers."""

import pytest
from django.core import mail

from crm.models import AgentProfile
from escalation import alerts
from escalation import services as escalation_services
from notifications import services
from notifications.models import Notification

from .conftest import AWAY, BOTH, EMAIL, IN_APP, OFFLINE

pytestmark = pytest.mark.django_db


def _by_user(escalation):
    return {n.recipient.username: n for n in Notification.objects.filter(escalation=escalation)}


def test_each_available_agent_of_the_team_is_notified_as_they_prefer(
    team, make_agent, escalate, django_capture_on_commit_callbacks
):
    make_agent("ina", teams=[team], notify_via=IN_APP)
    make_agent("emma", teams=[team], notify_via=EMAIL)
    make_agent("bo", teams=[team], notify_via=BOTH)
    make_agent("olaf", teams=[team], notify_via=BOTH, availability=OFFLINE)
    make_agent("ava", teams=[team], notify_via=BOTH, availability=AWAY)
    make_agent("other", teams=[], notify_via=BOTH)  # online, but not on the team

    with django_capture_on_commit_callbacks(execute=True):
        escalation = escalate(team)

    got = _by_user(escalation)
    assert set(got) == {"ina", "emma", "bo"}
    assert (got["ina"].show_in_app, got["ina"].email_requested) == (True, False)
    assert (got["emma"].show_in_app, got["emma"].email_requested) == (False, True)
    assert (got["bo"].show_in_app, got["bo"].email_requested) == (True, True)
    assert not any(n.is_fallback for n in got.values())
    assert sorted(m.to[0] for m in mail.outbox) == ["bo@example.com", "emma@example.com"]
    assert got["emma"].emailed_at is not None and got["bo"].emailed_at is not None
    assert got["ina"].emailed_at is None


def test_without_a_team_every_available_agent_is_notified(make_agent, escalate, team):
    make_agent("a1", teams=[team])
    make_agent("a2")
    make_agent("gone", availability=OFFLINE)
    escalation = escalate(None)
    assert set(_by_user(escalation)) == {"a1", "a2"}


def test_in_app_notification_is_pushed_live_with_contact_reason_priority_and_link(
    team, make_agent, escalate, socket_of, django_capture_on_commit_callbacks
):
    ina = make_agent("ina", teams=[team], notify_via=IN_APP)
    emma = make_agent("emma", teams=[team], notify_via=EMAIL)
    ina_socket, emma_socket = socket_of(ina), socket_of(emma)

    with django_capture_on_commit_callbacks(execute=True):
        escalation = escalate(team, contact_name="Jamie Patel", reason="sentiment")

    pushed = [e for e in ina_socket.receive_all() if e["type"] == "notification.created"]
    assert len(pushed) == 1
    payload = pushed[0]["notification"]
    assert payload["contact"] == "Jamie Patel"
    assert payload["reason"] == "sentiment"
    assert payload["priority"] == "normal"
    assert payload["link"] == f"/crm/conversations/{escalation.conversation_id}/"
    assert payload["id"] == Notification.objects.get(recipient=ina).pk
    assert pushed[0]["unread"] == 1
    # An email-only agent's bell is not rung.
    assert not [e for e in emma_socket.receive_all() if e["type"] == "notification.created"]


def test_nothing_is_pushed_when_the_escalation_rolls_back(team, make_agent, escalate, socket_of):
    from django.db import transaction

    ina = make_agent("ina", teams=[team], notify_via=BOTH)
    sock = socket_of(ina)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        escalate(team)
        raise Boom

    assert sock.receive_all() == []
    assert mail.outbox == []
    assert not Notification.objects.exists()


def test_notifying_twice_adds_nothing_and_sends_no_second_email(
    team, make_agent, escalate, django_capture_on_commit_callbacks
):
    make_agent("bo", teams=[team], notify_via=BOTH)
    with django_capture_on_commit_callbacks(execute=True):
        escalation = escalate(team)
    with django_capture_on_commit_callbacks(execute=True):
        again = alerts.notify_agents_of_escalation(escalation=escalation)
    assert again == []
    assert Notification.objects.count() == 1
    assert len(mail.outbox) == 1


def test_back_in_the_queue_notifies_again(team, make_agent, escalate):
    bo = make_agent("bo", teams=[team], notify_via=IN_APP)
    escalation = escalate(team)
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=bo)
    escalation_services.reassign_escalation(escalation_id=escalation.pk, actor=bo)
    assert Notification.objects.filter(recipient=bo, escalation=escalation).count() == 2


def test_email_only_agent_without_an_address_still_sees_it_in_the_app(team, make_agent, escalate):
    user = make_agent("noaddr", teams=[team], notify_via=EMAIL)
    user.email = ""
    user.save()
    escalation = escalate(team)
    notification = Notification.objects.get(escalation=escalation)
    assert notification.show_in_app and not notification.email_requested
    assert mail.outbox == []


def test_nobody_available_emails_the_teams_agents_and_the_managers(
    team, make_agent, escalate, django_capture_on_commit_callbacks
):
    make_agent("away", teams=[team], notify_via=IN_APP, availability=AWAY)
    make_agent("off", teams=[team], notify_via=EMAIL, availability=OFFLINE)
    make_agent("boss", notify_via=IN_APP, availability=OFFLINE, role=AgentProfile.Role.MANAGER)
    make_agent("elsewhere", notify_via=BOTH, availability=OFFLINE)  # other agent, no team

    with django_capture_on_commit_callbacks(execute=True):
        escalation = escalate(team)

    got = _by_user(escalation)
    assert set(got) == {"away", "off", "boss"}
    assert all(n.is_fallback and n.email_requested for n in got.values())
    assert sorted(m.to[0] for m in mail.outbox) == [
        "away@example.com",
        "boss@example.com",
        "off@example.com",
    ]
    assert "Nobody on the team is available" in mail.outbox[0].body


def test_a_failing_mail_server_never_breaks_the_handoff(
    team, make_agent, escalate, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "tests.notifications.backends.RefusingBackend"
    make_agent("bo", teams=[team], notify_via=BOTH)
    with django_capture_on_commit_callbacks(execute=True):
        escalation = escalate(team)
    escalation.refresh_from_db()
    assert escalation.status == "queued"
    assert escalation.conversation.mode == "awaiting_agent"
    notification = Notification.objects.get()
    assert notification.emailed_at is None
    assert notification.email_attempts >= 1
    assert "ConnectionRefusedError" in notification.email_error
    assert notification.email_claim == ""


def test_notifying_a_large_team_runs_a_fixed_number_of_queries(team, make_agent, escalate):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for(team_size):
        team_here = type(team).objects.create(name=f"T{team_size}")
        for i in range(team_size):
            make_agent(f"t{team_size}-{i}", teams=[team_here], notify_via=BOTH)
        escalation = escalate(team_here)
        Notification.objects.filter(escalation=escalation).delete()
        with CaptureQueriesContext(connection) as ctx:
            created = alerts.notify_agents_of_escalation(escalation=escalation)
        assert len(created) == team_size
        return len(ctx.captured_queries)

    assert queries_for(1) == queries_for(12)


def test_rows_a_concurrent_caller_stored_first_are_not_duplicated(team, make_agent, escalate):
    bo, ina = make_agent("bo", teams=[team]), make_agent("ina", teams=[team])
    escalation = escalate(team)
    Notification.objects.filter(recipient=ina).delete()

    def row(user):
        return Notification(
            recipient=user,
            dedupe_key=f"escalation:{escalation.pk}",
            kind="escalation",
            escalation=escalation,
            text="t",
        )

    # bo's row exists (stored by the other caller); only ina's is new.
    created = services._store_new([row(bo), row(ina)])
    assert [n.recipient for n in created] == [ina]
    assert Notification.objects.filter(escalation=escalation).count() == 2


def test_a_contact_name_with_a_newline_still_gets_its_email_out(
    team, make_agent, escalate, django_capture_on_commit_callbacks
):
    make_agent("emma", teams=[team], notify_via=EMAIL)
    with django_capture_on_commit_callbacks(execute=True):
        escalate(team, contact_name="Eve\r\nBcc: victim@example.com")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert "\n" not in message.subject and message.bcc == []
    assert message.to == ["emma@example.com"]
