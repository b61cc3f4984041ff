"""An alert follows its escalation: once someone takes it (or it is resolved, closed, cancelled)
every recipient's alert says what happened, live, and stops counting as unread."""

import threading

import pytest
from django.db import connection

from escalation import services as escalation_services
from escalation.errors import AlreadyClaimed
from notifications import services
from notifications.models import Notification

from .conftest import EMAIL, IN_APP


def _alerts(escalation) -> dict[str, Notification]:
    return {n.recipient.username: n for n in Notification.objects.filter(escalation=escalation)}


def _unread(user) -> int:
    return services.unread_counts([user.pk]).get(user.pk, 0)


@pytest.mark.django_db
def test_a_taken_alert_says_who_took_it_for_everyone_and_is_no_longer_unread(
    team, make_agent, escalate, socket_of, django_capture_on_commit_callbacks
):
    marina = make_agent("marina", teams=[team], notify_via=IN_APP)
    alex = make_agent("alex", teams=[team], notify_via=IN_APP)
    emma = make_agent("emma", teams=[team], notify_via=EMAIL)  # no in-app alert to push
    with django_capture_on_commit_callbacks(execute=True):
        escalation = escalate(team)
    assert (_unread(marina), _unread(alex)) == (1, 1)
    marina_socket, alex_socket, emma_socket = socket_of(marina), socket_of(alex), socket_of(emma)

    with django_capture_on_commit_callbacks(execute=True):
        escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=marina)

    alerts = _alerts(escalation)
    assert {name: n.outcome for name, n in alerts.items()} == {
        "marina": "Taken by Marina",
        "alex": "Taken by Marina",
        "emma": "Taken by Marina",
    }
    assert all(n.read_at is not None for n in alerts.values())
    assert (_unread(marina), _unread(alex)) == (0, 0)
    frame = alex_socket.receive_all()[-1]
    assert frame["type"] == "notification.updated" and frame["unread"] == 0
    assert frame["notifications"] == [
        {"id": alerts["alex"].pk, "outcome": "Taken by Marina", "read": True}
    ]
    assert marina_socket.receive_all()[-1]["type"] == "notification.updated"
    assert [f for f in emma_socket.receive_all() if f["type"] == "notification.updated"] == []


@pytest.mark.django_db
def test_a_read_alert_keeps_its_read_time_and_each_later_step_updates_the_outcome(
    team, make_agent, escalate, django_capture_on_commit_callbacks
):
    marina = make_agent("marina", teams=[team])
    alex = make_agent("alex", teams=[team])
    with django_capture_on_commit_callbacks(execute=True):
        escalation = escalate(team)
    read = services.mark_notification_read(
        user=alex, notification_id=_alerts(escalation)["alex"].pk
    )

    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=marina)
    assert _alerts(escalation)["alex"].read_at == read.read_at
    escalation_services.resolve_escalation(escalation_id=escalation.pk, agent=marina)
    assert {n.outcome for n in _alerts(escalation).values()} == {"Resolved by Marina"}
    escalation_services.close_escalation(escalation_id=escalation.pk, agent=marina)
    assert {n.outcome for n in _alerts(escalation).values()} == {"Closed by Marina"}


@pytest.mark.django_db
def test_a_cancelled_or_reassigned_escalation_settles_its_alerts_and_reminders(
    team, make_agent, escalate
):
    marina = make_agent("marina", teams=[team])
    alex = make_agent("alex", teams=[team])
    left = escalate(team)
    escalation_services.remind_overdue_escalation(
        escalation_id=left.pk, now=left.escalated_at + team_wait(team)
    )
    assert Notification.objects.filter(escalation=left, kind="reminder").count() == 2
    escalation_services.cancel_escalation(escalation_id=left.pk)
    assert {n.outcome for n in Notification.objects.filter(escalation=left)} == {
        "Cancelled: the customer left"
    }

    moved = escalate(team, contact_name="Sam Moved")
    escalation_services.reassign_escalation(escalation_id=moved.pk, actor=marina, to_agent=alex)
    assert {n.outcome for n in _alerts(moved).values()} == {"Assigned to Alex"}
    assert _unread(marina) == _unread(alex) == 0


def team_wait(team):
    from datetime import timedelta

    return timedelta(seconds=team.target_wait_seconds + 1)


@pytest.mark.django_db(transaction=True)
def test_racing_take_overs_and_mark_reads_leave_every_alert_settled_for_the_winner(
    team, make_agent, escalate
):
    """Eight agents race to take the escalation while each also marks everything read: one
    winner, and every alert ends read and saying who took it (PostgreSQL and SQLite)."""
    agents = [make_agent(f"agent{i}", teams=[team]) for i in range(8)]
    escalation = escalate(team)
    assert Notification.objects.filter(escalation=escalation).count() == 8
    barrier = threading.Barrier(len(agents) * 2)
    outcomes = []

    def take(agent):
        try:
            barrier.wait(timeout=30)
            escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
            outcomes.append(agent.username)
        except AlreadyClaimed:
            outcomes.append("lost")
        finally:
            connection.close()

    def read_all(agent):
        try:
            barrier.wait(timeout=30)
            services.mark_all_read(user=agent)
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(a,)) for a in agents]
    threads += [threading.Thread(target=read_all, args=(a,)) for a in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a worker hung"

    winners = [name for name in outcomes if name != "lost"]
    assert len(winners) == 1 and outcomes.count("lost") == 7
    winner = winners[0].title()
    alerts = Notification.objects.filter(escalation=escalation)
    assert {n.outcome for n in alerts} == {f"Taken by {winner}"}
    assert alerts.filter(read_at__isnull=True).count() == 0
    assert services.unread_counts([a.pk for a in agents]) == {}
