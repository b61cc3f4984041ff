"""SLA due times and breaches, priorities that age, sentiment raising priority at once, and
after-hours escalations (the customer is told when the team is back, may leave an email, and
the wait estimate counts the closed hours)."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from crm import services as crm_services
from crm.models import Message
from escalation import selectors, services
from escalation.models import Escalation, EscalationEvent, Priority, TeamRouting
from escalation.routing import services as routing
from escalation.routing import tasks
from integrations.models import WebhookDelivery, WebhookSubscription
from notifications.models import Notification
from tests.factories import AgentFactory, ConversationFactory, TeamFactory
from tickets.models import Ticket

from .routing_helpers import closed_all_week_but, conversation_for, escalate

pytestmark = pytest.mark.django_db
Kind = EscalationEvent.Kind


def test_the_sla_clock_starts_with_the_target_of_the_priority():
    team = TeamFactory(name="Billing")
    TeamRouting.objects.create(team=team, sla_targets={"high": 240})
    escalation = escalate(conversation_for(team), priority=Priority.HIGH)
    assert escalation.sla_due_at == escalation.escalated_at + timedelta(seconds=240)
    normal = escalate(ConversationFactory(), priority=Priority.NORMAL)
    assert normal.sla_due_at == normal.escalated_at + timedelta(seconds=900)  # the default


def test_a_breach_is_recorded_once_alerts_managers_and_emits_a_webhook():
    WebhookSubscription.objects.create(
        url="https://hooks.example/x", events=["escalation.sla_breached"]
    )
    manager = AgentFactory(display_name="Manager", role="manager")
    escalation = escalate(ConversationFactory(), priority=Priority.URGENT)
    later = escalation.sla_due_at + timedelta(seconds=1)

    assert routing.mark_sla_breach(escalation_id=escalation.pk, now=later)
    assert not routing.mark_sla_breach(escalation_id=escalation.pk, now=later)

    escalation.refresh_from_db()
    assert escalation.sla_breached
    assert escalation.events.filter(kind=Kind.SLA_BREACHED).count() == 1
    alert = Notification.objects.get(recipient=manager, kind=Notification.Kind.SLA_BREACHED)
    assert "SLA breached" in alert.text
    assert WebhookDelivery.objects.filter(event="escalation.sla_breached").count() == 1


def test_the_sweep_only_marks_escalations_past_due():
    due = escalate(ConversationFactory(), priority=Priority.URGENT)
    Escalation.objects.filter(pk=due.pk).update(sla_due_at=timezone.now() - timedelta(seconds=1))
    not_yet = escalate(ConversationFactory(), priority=Priority.LOW)
    assert tasks.mark_sla_breaches() == 1
    not_yet.refresh_from_db()
    assert not not_yet.sla_breached


def test_waiting_raises_priority_on_the_schedule_with_its_cause():
    escalation = escalate(ConversationFactory(), priority=Priority.LOW)
    early = escalation.escalated_at + timedelta(seconds=1799)
    assert not routing.age_escalation(escalation_id=escalation.pk, now=early)
    later = escalation.escalated_at + timedelta(seconds=1800)
    assert routing.age_escalation(escalation_id=escalation.pk, now=later)

    escalation.refresh_from_db()
    assert escalation.priority == Priority.NORMAL
    aged = escalation.events.get(kind=Kind.AGED)
    assert (aged.old_value, aged.new_value) == ("low", "normal")
    assert "Waited 30 min at low priority" in aged.note
    assert Ticket.objects.get(escalation=escalation).priority == Priority.NORMAL
    # The next level waits its own time, counted from this raise.
    assert not routing.age_escalation(
        escalation_id=escalation.pk, now=later + timedelta(seconds=60)
    )
    # A higher priority has a shorter SLA target: the due time moved earlier.
    assert escalation.sla_due_at == escalation.escalated_at + timedelta(seconds=900)


def test_sentiment_worsening_while_waiting_raises_priority_at_once():
    escalation = escalate(
        ConversationFactory(),
        priority=Priority.NORMAL,
        signals={"sentiment": {"intensity": 0.3}},
    )
    assert not routing.raise_priority_on_worse_sentiment(
        conversation_id=escalation.conversation_id, intensity=0.4
    )
    assert routing.raise_priority_on_worse_sentiment(
        conversation_id=escalation.conversation_id, intensity=0.75
    )
    escalation.refresh_from_db()
    assert escalation.priority == Priority.HIGH
    assert (
        "more upset while waiting (intensity 0.30 → 0.75)"
        in escalation.events.get(kind=Kind.AGED).note
    )


def test_an_angry_message_while_waiting_raises_priority_through_the_pipeline(
    django_capture_on_commit_callbacks,
):
    conversation = ConversationFactory()
    escalation = escalate(
        conversation, priority=Priority.LOW, signals={"sentiment": {"intensity": 0.1}}
    )
    with django_capture_on_commit_callbacks(execute=True):  # the analysis runs after commit
        crm_services.receive_customer_message(
            conversation=conversation,
            text="This is RIDICULOUS, I am FURIOUS, you are useless and I have waited forever!!!",
        )
    escalation.refresh_from_db()
    assert escalation.priority > Priority.LOW
    assert escalation.events.filter(kind__in=[Kind.AGED, Kind.REPRIORITISED]).exists()


def test_after_hours_the_customer_is_told_when_the_team_is_back_and_can_leave_an_email():
    team = TeamFactory(name="Billing")
    closed_all_week_but(team, day_offset=3)
    conversation = conversation_for(team)
    conversation.contact.email = ""
    conversation.contact.save()

    escalation = escalate(conversation)

    assert escalation.after_hours_until is not None
    assert escalation.after_hours_until > timezone.now() + timedelta(days=2)
    notice = conversation.messages.filter(sender=Message.Sender.SYSTEM).last().text
    assert "Our Billing team is away right now and back" in notice
    assert "09:00 (UTC)" in notice

    crm_services.receive_customer_message(conversation=conversation, text="sure: jamie@example.org")
    escalation.refresh_from_db()
    assert escalation.follow_up_email == "jamie@example.org"
    assert escalation.status == Escalation.Status.QUEUED
    assert Ticket.objects.get(escalation=escalation).status == Ticket.Status.OPEN
    conversation.contact.refresh_from_db()
    assert conversation.contact.email == "jamie@example.org"
    thanks = conversation.messages.filter(sender=Message.Sender.SYSTEM).last().text
    assert "follow up at jamie@example.org" in thanks


def test_after_hours_a_french_customer_is_told_in_french_with_the_day_in_french():
    from django.utils import formats, translation

    team = TeamFactory(name="Facturation")
    closed_all_week_but(team, day_offset=3)
    conversation = conversation_for(team)
    Message.objects.create(
        conversation=conversation,
        channel=conversation.channel,
        sender="customer",
        text="Je veux parler avec une personne, ce n'est pas mon colis",
    )
    escalation = escalate(conversation)
    notice = conversation.messages.filter(sender=Message.Sender.SYSTEM).last().text
    with translation.override("fr"):
        day = formats.date_format(escalation.after_hours_until, "l j F")
    assert notice.startswith(
        f"Notre équipe Facturation est absente pour le moment et revient {day} 09:00 (UTC)."
    )
    crm_services.receive_customer_message(conversation=conversation, text="moi@example.org")
    thanks = conversation.messages.filter(sender=Message.Sender.SYSTEM).last().text
    assert thanks == "Merci. Nous vous écrirons à moi@example.org dès le retour de l'équipe."


def test_the_alert_says_after_hours():
    team = TeamFactory(name="Billing")
    closed_all_week_but(team, day_offset=3)
    agent = AgentFactory(teams=[team])
    escalate(conversation_for(team))
    assert "after hours" in Notification.objects.get(recipient=agent).text


def test_the_wait_estimate_counts_the_closed_hours():
    team = TeamFactory(name="Billing")
    closed_all_week_but(team, day_offset=3)
    escalation = escalate(conversation_for(team))
    assert selectors.estimated_wait_seconds(escalation) > 2 * 86400


def test_an_after_hours_escalation_is_not_pushed_until_the_team_opens():
    team = TeamFactory(name="Billing")
    closed_all_week_but(team, day_offset=3)
    TeamRouting.objects.filter(team=team).update(mode=TeamRouting.Mode.AUTOMATIC)
    AgentFactory(teams=[team])
    escalation = escalate(conversation_for(team))
    assert routing.route_escalation(escalation_id=escalation.pk) is None


def test_first_agent_reply_after_takeover_is_recorded_not_the_greeting():
    from escalation import services

    conversation = ConversationFactory()
    escalation = escalate(conversation)
    agent = AgentFactory()
    services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    escalation.refresh_from_db()
    assert escalation.first_reply_at is None  # the takeover greeting is not a reply
    reply = crm_services.send_agent_message(conversation=conversation, agent=agent, text="On it")
    escalation.refresh_from_db()
    assert escalation.first_reply_at == reply.created_at


def test_the_sweeps_route_a_team_that_opened_and_age_what_waited():
    team = TeamFactory(name="Billing")
    closed_all_week_but(team, day_offset=3)
    TeamRouting.objects.filter(team=team).update(mode=TeamRouting.Mode.AUTOMATIC, offer_first=False)
    agent = AgentFactory(teams=[team])
    escalation = escalate(conversation_for(team), priority=Priority.LOW)
    assert tasks.route_waiting_escalations() == 0  # still closed

    TeamRouting.objects.filter(team=team).update(weekly_hours=[])  # open around the clock now
    assert tasks.route_waiting_escalations() == 1
    escalation.refresh_from_db()
    assert escalation.claimed_by == agent

    waiting = escalate(ConversationFactory(), priority=Priority.LOW)
    Escalation.objects.filter(pk=waiting.pk).update(
        priority_changed_at=timezone.now() - timedelta(hours=1)
    )
    assert tasks.age_priorities() == 1
    waiting.refresh_from_db()
    assert waiting.priority == Priority.NORMAL


def test_celery_beat_drives_the_offer_timeouts_pushes_ageing_and_breaches():
    """No timer runs inside a request: these four sweeps are Celery beat's (and the embedded
    beat's under `make run`, which reads the same schedule)."""
    from config.celery import app

    every = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    sweeps = {
        f"escalation.routing.tasks.{name}"
        for name in (
            "expire_offers",
            "route_waiting_escalations",
            "age_priorities",
            "mark_sla_breaches",
        )
    }
    assert sweeps <= set(every)
    # docs/routing.md promises an offer moves at most one sweep (5 s) after its timeout.
    assert every["escalation.routing.tasks.expire_offers"] <= 5
    app.loader.import_default_modules()
    assert sweeps <= set(app.tasks)


def _day(offset: int):
    return (timezone.now() + timedelta(days=offset)).date()


def _at_nine(offset: int) -> datetime:
    return datetime.combine(_day(offset), time(9), tzinfo=UTC)


def _hours(*offsets):
    return [
        {"day": _day(o).strftime("%a").lower(), "opens": "09:00", "closes": "17:00"}
        for o in offsets
    ]


def _clocks(escalation):
    escalation.refresh_from_db()
    return escalation.after_hours_until, escalation.sla_due_at


def test_new_hours_holidays_and_targets_move_the_clocks_of_the_teams_waiting_escalations():
    """The reopening and the SLA due time are computed at escalation; a manager who changes
    the hours, a holiday or a target changes them for everyone still waiting, not for the
    escalations taken already or of other teams, nor a due time already breached."""
    team = TeamFactory(name="Billing")
    closed_all_week_but(team, day_offset=3)
    waiting = escalate(conversation_for(team))
    taken = escalate(conversation_for(team))
    services.take_over_escalation(escalation_id=taken.pk, agent=AgentFactory(teams=[team]))
    breached = escalate(conversation_for(team))
    Escalation.objects.filter(pk=breached.pk).update(sla_breached_at=timezone.now())
    elsewhere = TeamFactory(name="Sales")
    closed_all_week_but(elsewhere, day_offset=3)
    other = escalate(conversation_for(elsewhere))
    assert _clocks(waiting) == (_at_nine(3), _at_nine(3) + timedelta(minutes=15))
    untouched = {e.pk: _clocks(e) for e in (taken, other)}
    breached_due = _clocks(breached)[1]

    routing.update_team_routing(team=team, weekly_hours=_hours(1, 3))  # open tomorrow too
    assert _clocks(waiting) == (_at_nine(1), _at_nine(1) + timedelta(minutes=15))
    assert _clocks(breached) == (_at_nine(1), breached_due)

    routing.update_team_routing(team=team, holidays=[_day(1).isoformat()])  # not tomorrow
    assert _clocks(waiting) == (_at_nine(3), _at_nine(3) + timedelta(minutes=15))

    routing.update_team_routing(team=team, sla_targets={"normal": 600})
    assert _clocks(waiting) == (_at_nine(3), _at_nine(3) + timedelta(minutes=10))

    routing.update_team_routing(team=team, weekly_hours=[])  # open around the clock now
    reopened, due = _clocks(waiting)
    assert reopened <= timezone.now() and not waiting.is_after_hours
    assert due == waiting.escalated_at + timedelta(minutes=10)

    assert {e.pk: _clocks(e) for e in (taken, other)} == untouched
    assert _clocks(breached)[1] == breached_due


def test_a_reopening_already_past_stays_when_the_team_is_open():
    team = TeamFactory(name="Billing")
    closed_all_week_but(team, day_offset=3)
    escalation = escalate(conversation_for(team))
    opened = timezone.now() - timedelta(hours=1)  # the team opened an hour ago
    Escalation.objects.filter(pk=escalation.pk).update(after_hours_until=opened)
    routing.update_team_routing(team=team, weekly_hours=[])
    assert _clocks(escalation)[0] == opened


def test_new_default_targets_move_the_due_times_that_follow_them():
    own = TeamFactory(name="Billing")
    TeamRouting.objects.create(team=own, sla_targets={"normal": 600})
    follows = TeamFactory(name="Sales")
    TeamRouting.objects.create(team=follows)
    mine, theirs, nobodys = (
        escalate(conversation_for(own)),
        escalate(conversation_for(follows)),
        escalate(ConversationFactory()),
    )
    assert nobodys.team_id is None

    routing.update_routing_settings(
        sla_targets={"urgent": 120, "high": 300, "normal": 1200, "low": 3600}
    )

    assert _clocks(mine)[1] == mine.escalated_at + timedelta(seconds=600)  # its team's own
    assert _clocks(theirs)[1] == theirs.escalated_at + timedelta(seconds=1200)
    assert _clocks(nobodys)[1] == nobodys.escalated_at + timedelta(seconds=1200)


def test_a_wait_that_runs_over_closed_hours_names_the_reopening_it_waits_for():
    """What the waiting customer reads instead of the minutes: the opening of the open stretch
    the wait ends in (not the next one when the queue is longer than a day), none while the
    team stays open, and none across a midnight the team is open through."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from escalation.routing import hours
    from escalation.routing.clocks import wait_over_closed_hours

    berlin = ZoneInfo("Europe/Berlin")
    weekdays = [{"day": day, "opens": "09:00", "closes": "17:00"} for day in ("mon", "tue", "wed")]
    business = hours.build_hours(time_zone="Europe/Berlin", weekly_hours=weekdays, holidays=[])
    monday = datetime(2026, 1, 5, 16, 50, tzinfo=berlin)

    assert wait_over_closed_hours(business, 5 * 60, now=monday) == (300.0, None)
    seconds, reopens = wait_over_closed_hours(business, 20 * 60, now=monday)
    assert reopens == datetime(2026, 1, 6, 9, 0, tzinfo=berlin) and reopens.tzinfo == berlin
    assert seconds == (16 * 60 + 10 + 10) * 60
    _seconds, reopens = wait_over_closed_hours(business, 9 * 3600, now=monday)
    assert reopens == datetime(2026, 1, 7, 9, 0, tzinfo=berlin)  # a day and more of work
    sunday = datetime(2026, 1, 4, 12, 0, tzinfo=berlin)
    assert wait_over_closed_hours(business, 60, now=sunday)[1] == datetime(
        2026, 1, 5, 9, 0, tzinfo=berlin
    )

    through = [
        {"day": "mon", "opens": "09:00", "closes": "24:00"},
        {"day": "tue", "opens": "00:00", "closes": "17:00"},
    ]
    business = hours.build_hours(time_zone="Europe/Berlin", weekly_hours=through, holidays=[])
    late = datetime(2026, 1, 5, 23, 55, tzinfo=berlin)
    assert wait_over_closed_hours(business, 30 * 60, now=late) == (1800.0, None)


def test_a_handoff_just_before_closing_names_the_reopening_not_a_night_of_minutes(settings):
    """Open now, closing in five minutes, a wait of about thirty: the customer is told when the
    team reopens, not "about 970 minutes" (the wait stretched over the night)."""
    settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, "DEFAULT_PICKUP_SECONDS": 1800}
    utc_now = timezone.now()
    offset = (12 - utc_now.hour + 12) % 24 - 12  # the zone whose clock reads about noon
    zone = "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-2 is UTC+2
    local_now = utc_now + timedelta(hours=offset)
    today = local_now.strftime("%a").lower()
    tomorrow = (local_now + timedelta(days=1)).strftime("%a").lower()
    team = TeamFactory(name="Billing")
    TeamRouting.objects.create(
        team=team,
        time_zone=zone,
        weekly_hours=[
            {
                "day": today,
                "opens": "00:00",
                "closes": (local_now + timedelta(minutes=5)).strftime("%H:%M"),
            },
            {"day": tomorrow, "opens": "09:00", "closes": "17:00"},
        ],
    )
    AgentFactory(teams=[team])
    conversation = conversation_for(team)

    escalation = escalate(conversation)

    assert escalation.after_hours_until is None  # open at the handoff
    notice = conversation.messages.filter(sender=Message.Sender.SYSTEM).last().text
    assert notice.startswith("I'm connecting you with a member of our team. We close before")
    assert "when we reopen" in notice and "09:00" in notice
    assert "minute" not in notice
