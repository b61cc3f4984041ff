"""Tickets over the API: list, read, and changes that go through the ticket services."""

import pytest

from escalation import services as escalation_services
from escalation.models import Priority
from tests.api.conftest import error_of
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/tickets/"


def escalated(conversation=None):
    escalation, _ = escalation_services.escalate_conversation(
        conversation=conversation or ConversationFactory(),
        reason="complexity",
        priority=Priority.HIGH,
        triggered_by="detection",
    )
    return escalation


def finished(conversation=None):
    """An escalation the customer left before pickup: cancelled, its ticket closed."""
    escalation = escalated(conversation)
    escalation_services.cancel_escalation(escalation_id=escalation.pk, reason="left")
    escalation.ticket.refresh_from_db()
    return escalation


def test_tickets_of_a_conversation(api, conversation):
    escalation = escalated(conversation)
    escalated()
    rows = api.get(URL, {"conversation": conversation.pk}).json()["results"]
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == escalation.ticket.pk
    assert row["reference"] == escalation.ticket.reference
    assert (row["status"], row["assignee"], row["escalation"]) == ("open", None, escalation.pk)
    assert row["priority"] == "high"


def test_filters_by_status_and_assignee(api, agent):
    mine = escalated()
    escalated()
    api.post(f"/api/v1/escalations/{mine.pk}/take-over/")
    rows = api.get(URL, {"assignee": agent.pk}).json()["results"]
    assert [row["id"] for row in rows] == [mine.ticket.pk]
    assert rows[0]["assignee"] == {"id": agent.pk, "name": "Marina"}
    assert len(api.get(URL, {"unassigned": "true"}).json()["results"]) == 1
    assert api.get(URL, {"status": "closed"}).json()["results"] == []


def test_read_one_with_history(api):
    ticket = escalated().ticket
    body = api.get(f"{URL}{ticket.pk}/").json()
    assert body["reference"] == ticket.reference
    assert [event["kind"] for event in body["events"]] == ["opened"]


def test_change_status_priority_and_assignee_leaves_history(api, agent, other_agent):
    ticket = finished().ticket
    response = api.patch(
        f"{URL}{ticket.pk}/",
        {"status": "open", "priority": "urgent", "assignee": other_agent.pk, "note": "again"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["priority"]) == ("open", "urgent")
    assert body["assignee"]["id"] == other_agent.pk
    kinds = [event["kind"] for event in body["events"]]
    assert kinds == ["opened", "status", "assigned", "priority", "status"]
    assert body["events"][-1]["actor"]["id"] == agent.pk


def test_an_impossible_status_move_is_409(api):
    ticket = finished().ticket
    response = api.patch(f"{URL}{ticket.pk}/", {"status": "pending"}, format="json")
    assert response.status_code == 409
    assert error_of(response)["code"] == "invalid_transition"


def test_a_failed_change_changes_nothing(api, other_agent):
    ticket = finished().ticket
    response = api.patch(
        f"{URL}{ticket.pk}/", {"assignee": other_agent.pk, "status": "pending"}, format="json"
    )
    assert response.status_code == 409
    ticket.refresh_from_db()
    assert ticket.assignee_id is None  # the assignment rolled back with the refused move


@pytest.mark.parametrize("body", [{"status": "closed"}, {"status": "pending"}, "assignee"])
def test_status_and_assignee_follow_an_active_escalation(api, agent, other_agent, body):
    """Closing the ticket of a claimed escalation made resolve_escalation fail later, and any
    writer could hand a colleague's ticket to someone else: both go through /escalations/."""
    escalation = escalated()
    if body == "assignee":
        body = {"assignee": other_agent.pk}
    response = api.patch(f"{URL}{escalation.ticket.pk}/", body, format="json")  # queued
    assert response.status_code == 409
    assert error_of(response)["code"] == "escalation_active"
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    response = api.patch(f"{URL}{escalation.ticket.pk}/", body, format="json")  # claimed
    assert response.status_code == 409
    assert error_of(response)["code"] == "escalation_active"
    escalation_services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    escalation.ticket.refresh_from_db()
    assert (escalation.ticket.status, escalation.ticket.assignee_id) == ("resolved", agent.pk)


def test_priority_still_changes_while_the_escalation_is_active(api):
    ticket = escalated().ticket
    response = api.patch(f"{URL}{ticket.pk}/", {"priority": "urgent"}, format="json")
    assert response.status_code == 200
    assert response.json()["priority"] == "urgent"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"status": "lost"}, "status"),
        ({"assignee": 999999}, "assignee"),
        ({"priority": 3}, "priority"),
    ],
)
def test_bad_changes_are_400(api, body, field):
    ticket = escalated().ticket
    response = api.patch(f"{URL}{ticket.pk}/", body, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert field in error.get("fields", {}) or (field == "non_field_errors" and error["message"])


def test_reader_cannot_change_a_ticket(reader):
    ticket = escalated().ticket
    assert (
        reader.patch(f"{URL}{ticket.pk}/", {"status": "pending"}, format="json").status_code == 403
    )
    assert reader.get(f"{URL}{ticket.pk}/").status_code == 200


def test_missing_ticket_is_404(api):
    assert api.get(f"{URL}999999/").status_code == 404
    assert api.patch(f"{URL}999999/", {"status": "open"}, format="json").status_code == 404


def test_reopening_clears_the_resolution_time(api, agent):
    escalation = escalated()
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    escalation_services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    response = api.patch(f"{URL}{escalation.ticket.pk}/", {"status": "open"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["resolved_at"]) == ("open", None)
