"""A new escalation's agents are notified right after the handoff commits, or by the sweep if
the process died in between: never lost, never twice."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.celery import app
from escalation import services
from notifications.models import Notification
from tests.factories import AgentFactory, ConversationFactory
from tests.races import race

pytestmark = pytest.mark.django_db


def _handoff():
    escalation, created = services.escalate_conversation(
        conversation=ConversationFactory(),
        reason="request",
        priority="high",
        triggered_by="detection",
    )
    assert created
    return escalation


def _sweep_later(seconds=11):
    return services.notify_agents_of_missed_escalations(
        now=timezone.now() + timedelta(seconds=seconds)
    )


def test_the_handoff_commits_first_and_the_agents_are_told_right_after(
    django_capture_on_commit_callbacks,
):
    AgentFactory(username="ina")
    AgentFactory(username="bo")
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        CaptureQueriesContext(connection) as handoff,
    ):
        escalation = _handoff()
    assert not Notification.objects.exists()
    assert not any("notifications_notification" in q["sql"] for q in handoff.captured_queries)

    for callback in callbacks:
        callback()
    told = Notification.objects.filter(escalation=escalation, kind="escalation")
    assert sorted(told.values_list("recipient__username", flat=True)) == ["bo", "ina"]
    assert {n.dedupe_key for n in told} == {f"escalation:{escalation.pk}"}


def test_a_process_that_died_after_the_commit_leaves_them_to_the_sweep():
    AgentFactory(username="ina")
    escalation = _handoff()  # commit callbacks never run: as if the worker died after COMMIT
    assert not Notification.objects.exists()

    assert _sweep_later(seconds=2) == 0  # the after-commit path may still be on its way
    assert _sweep_later() == 1
    assert Notification.objects.get().escalation == escalation
    assert _sweep_later() == 0  # told once


def test_an_escalation_taken_before_its_agents_were_told_tells_nobody():
    """Its alerts would never be settled ("Taken by ..." is written when it is taken)."""
    ina = AgentFactory(username="ina")
    escalation = _handoff()
    services.take_over_escalation(escalation_id=escalation.pk, agent=ina)
    assert services.notify_agents_of_new_escalation(escalation_id=escalation.pk) == 0
    assert _sweep_later() == 0
    assert not Notification.objects.exists()


def test_one_released_before_the_sweep_keeps_the_release_s_notifications_only():
    ina, bo = AgentFactory(username="ina"), AgentFactory(username="bo")
    escalation = _handoff()
    services.take_over_escalation(escalation_id=escalation.pk, agent=ina)
    services.reassign_escalation(escalation_id=escalation.pk, actor=ina)  # back to the queue
    assert _sweep_later() == 0
    keys = set(Notification.objects.values_list("dedupe_key", flat=True))
    assert keys == {f"escalation:{escalation.pk}:1"}
    assert Notification.objects.filter(recipient=bo).count() == 1


def test_the_beat_runs_the_sweep():
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "escalation.tasks.notify_agents_of_missed_escalations" in tasks


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_after_commit_path_and_the_sweep_racing_tell_each_agent_once(monkeypatch):
    """Both at once, each on its own connection, released together, 15 rounds with 4 agents:
    the escalation's row lock serialises them and the second finds the agents told (the unique
    (recipient, key) of notifications is the backstop)."""
    agents = [AgentFactory(username=f"agent{i}") for i in range(4)]
    # The handoffs below commit for real; their own after-commit notification is held back so
    # that the race below is the first to tell anyone.
    monkeypatch.setattr(services, "_notify_agents_after_commit", lambda escalation_id: None)
    escalations = []
    for _round in range(15):
        escalation = _handoff()  # committed, nobody told yet
        assert not Notification.objects.filter(escalation=escalation).exists()
        escalations.append(escalation)
        later = escalation.escalated_at + timedelta(seconds=11)
        after_commit, sweep = race(
            lambda i, pk=escalation.pk, later=later: (
                services.notify_agents_of_new_escalation(escalation_id=pk)
                if i == 0
                else services.notify_agents_of_missed_escalations(now=later)
            ),
            2,
        )
        assert after_commit in (0, 4) and sweep in (0, 1), (after_commit, sweep)
        assert (after_commit == 4) != (sweep == 1), "exactly one of them told the agents"

    for escalation in escalations:
        per_agent = [
            Notification.objects.filter(escalation=escalation, recipient=agent).count()
            for agent in agents
        ]
        assert per_agent == [1, 1, 1, 1], (escalation.pk, per_agent)
