"""The header: availability and the notification bell."""

from crm.models import AgentProfile
from notifications.models import Notification

HTMX = {"HTTP_HX_REQUEST": "true"}  # how the page asks for its fragments


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
    listing = agent_client.get("/crm/notifications/", **HTMX).content.decode()
    assert "Bell Person" in listing
    notification = Notification.objects.get(recipient=agent)
    response = agent_client.post(
        f"/crm/notifications/{notification.pk}/read/", HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 204 and response["HX-Trigger"] == "le-notifications"
    assert response["HX-Redirect"] == notification.link  # opens the conversation
    badge = agent_client.get("/crm/notifications/badge/", **HTMX).content.decode()
    assert 'data-unread="0"' in badge
    # someone else's notification is not found, not marked
    theirs = Notification.objects.get(recipient=other_agent)
    response = agent_client.post(f"/crm/notifications/{theirs.pk}/read/", HTTP_HX_REQUEST="true")
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_the_notifications_opened_directly_are_a_whole_page(agent_client):
    page = agent_client.get("/crm/notifications/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "<html" in html and 'class="notification-list"' in html
    assert "crm/crm.css" in html  # styled, inside the CRM's frame


def test_a_fragment_opened_directly_leads_to_its_page(agent_client, conversation):
    for part in ("messages", "panel", "sentiment"):
        response = agent_client.get(f"/crm/conversations/{conversation.pk}/{part}/")
        assert response.status_code == 302
        assert response["Location"] == f"/crm/conversations/{conversation.pk}/"
    assert agent_client.get("/crm/notifications/badge/")["Location"] == "/crm/notifications/"


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert b"<svg" in b"".join(response.streaming_content)
