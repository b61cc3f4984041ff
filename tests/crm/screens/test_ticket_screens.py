"""Tickets: list with filters, detail with history and the linked conversation, status/assign."""

import re

from escalation import services as escalation_services
from escalation.models import Priority
from tickets import services as ticket_services
from tickets.models import Ticket


def ticket_ids(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'data-ticket-id="(\d+)"', html)}


def test_ticket_list_filters_by_status_priority_and_assignee(agent_client, agent, escalate):
    mine = escalate(priority="high")
    escalation_services.take_over_escalation(escalation_id=mine.pk, agent=agent)
    other = escalate(priority="low")
    resolved = escalate(priority="low")
    ticket_services.set_ticket_status(ticket=resolved.ticket, status="resolved")

    def ids(query=""):
        response = agent_client.get("/crm/tickets/?" + query)
        assert response.status_code == 200
        return ticket_ids(response.content.decode())

    assert ids() == {mine.ticket.pk, other.ticket.pk, resolved.ticket.pk}
    assert ids("status=resolved") == {resolved.ticket.pk}
    assert ids("priority=high") == {mine.ticket.pk}
    assert ids("assignee=me") == {mine.ticket.pk}
    assert ids(f"assignee={agent.pk}") == {mine.ticket.pk}
    assert ids("assignee=none") == {other.ticket.pk, resolved.ticket.pk}
    assert ids("status=bogus") == ids()  # an invalid filter is ignored, not a 500


def test_ticket_detail_shows_history_and_links_the_conversation(agent_client, agent, escalate):
    escalation = escalate(detail="Refund <b>now</b>")
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    escalation_services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    html = agent_client.get(f"/crm/tickets/{escalation.ticket.pk}/").content.decode()
    assert f'href="/crm/conversations/{escalation.conversation_id}/"' in html
    assert 'id="ticket-status">Resolved<' in html
    for kind in ["Opened", "Assigned", "Status changed", "Escalated", "Taken over", "Resolved"]:
        assert kind in html
    assert "Refund &lt;b&gt;now&lt;/b&gt;" in html


def test_status_and_assignee_change_through_the_ticket_services(
    agent_client, other_agent, escalate
):
    escalation = escalate()
    ticket = escalation.ticket
    # While the escalation is queued or claimed, the ticket follows it: refused with a message.
    refused = agent_client.post(
        f"/crm/tickets/{ticket.pk}/status/", {"status": "pending"}, follow=True
    )
    assert "Resolve or close the escalation instead." in refused.content.decode()
    escalation_services.cancel_escalation(escalation_id=escalation.pk, reason="left")
    response = agent_client.post(f"/crm/tickets/{ticket.pk}/status/", {"status": "open"})
    assert response.status_code == 302
    agent_client.post(f"/crm/tickets/{ticket.pk}/assign/", {"assignee": other_agent.pk})
    ticket.refresh_from_db()
    assert ticket.status == "open" and ticket.assignee == other_agent
    assert ticket.events.filter(kind="assigned").exists()


def test_a_forbidden_status_move_is_a_message_not_a_500(agent_client, escalate):
    escalation = escalate()
    ticket = escalation.ticket
    escalation_services.cancel_escalation(escalation_id=escalation.pk, reason="left")  # closed
    response = agent_client.post(
        f"/crm/tickets/{ticket.pk}/status/", {"status": "pending"}, follow=True
    )
    assert response.status_code == 200
    assert "A ticket cannot go from closed to pending." in response.content.decode()
    bad = agent_client.post(
        f"/crm/tickets/{ticket.pk}/status/", {"status": "nope"}, HTTP_HX_REQUEST="true"
    )
    assert bad.status_code == 400
    assert Ticket.objects.get(pk=ticket.pk).status == "closed"


def test_ticket_list_query_count_does_not_grow_with_rows(
    agent_client, escalate, django_assert_max_num_queries
):
    for _ in range(3):
        escalate(priority="normal")
    with django_assert_max_num_queries(10):
        agent_client.get("/crm/tickets/")
    for _ in range(5):
        escalate(priority=Priority.HIGH.code)
    with django_assert_max_num_queries(10):
        agent_client.get("/crm/tickets/")
