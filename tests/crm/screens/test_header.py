"""The header: availability and the notification bell."""

from crm.models import AgentProfile
from notifications.models import Notification


def test_availability_changes_through_the_service(agent_client, agent):
    response = agent_client.post(
        "/crm/me/availability/", {"availability": "away"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert '<option value="away" selected>' in response.content.decode()
    assert AgentProfile.objects.get(user=agent).availability == "away"
    bad = agent_client.post(
        "/crm/me/availability/", {"availability": "asleep"}, HTTP_HX_REQUEST="true"
    )
    assert bad.status_code == 400 and bad["HX-Retarget"] == "#toasts"


def test_the_bell_counts_unread_and_marks_read(agent_client, agent, other_agent, escalate):
    escalate(contact_name="Bell Person")
    assert Notification.objects.filter(recipient=agent).count() == 1
    page = agent_client.get("/crm/live-escalation/").content.decode()
    assert 'data-unread="1"' in page
    listing = agent_client.get("/crm/notifications/").content.decode()
    assert "Bell Person" in listing
    notification = Notification.objects.get(recipient=agent)
    response = agent_client.post(
        f"/crm/notifications/{notification.pk}/read/", HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 204 and response["HX-Trigger"] == "le-notifications"
    assert response["HX-Redirect"] == notification.link  # opens the conversation
    badge = agent_client.get("/crm/notifications/badge/").content.decode()
    assert 'data-unread="0"' in badge
    # someone else's notification is not found, not marked
    theirs = Notification.objects.get(recipient=other_agent)
    response = agent_client.post(f"/crm/notifications/{theirs.pk}/read/", HTTP_HX_REQUEST="true")
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
