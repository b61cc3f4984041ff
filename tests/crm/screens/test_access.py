"""Every CRM screen needs a login; agents don't get managers' screens; forms need CSRF."""

import pytest
from django.test import Client

from tests.factories import UserFactory

AGENT_PAGES = [
    "/crm/live-escalation/",
    "/crm/conversations/",
    "/crm/tickets/",
    "/crm/preferences/",
    "/crm/notifications/",
    "/crm/notifications/badge/",
]
MANAGER_PAGES = ["/crm/analytics/", "/crm/settings/"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", AGENT_PAGES + MANAGER_PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.django_db
def test_anonymous_posts_change_nothing(client, escalate):
    escalation = escalate()
    response = client.post(f"/crm/escalations/{escalation.pk}/take-over/")
    assert response.status_code == 302
    escalation.refresh_from_db()
    assert escalation.status == "queued"


@pytest.mark.django_db
@pytest.mark.parametrize("url", AGENT_PAGES + MANAGER_PAGES)
def test_logged_in_non_staff_users_are_forbidden(client, url):
    client.force_login(UserFactory(username="shopper", is_staff=False))
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("url", MANAGER_PAGES)
def test_agents_cannot_open_manager_screens(agent_client, url):
    assert agent_client.get(url).status_code == 403


def test_agents_do_not_see_manager_links(agent_client):
    html = agent_client.get("/crm/live-escalation/").content.decode()
    assert 'href="/crm/analytics/"' not in html
    assert 'href="/crm/settings/"' not in html


@pytest.mark.parametrize("url", MANAGER_PAGES)
def test_managers_open_their_screens(manager_client, url):
    response = manager_client.get(url)
    assert response.status_code == 200
    assert 'href="/crm/analytics/"' in response.content.decode()


def test_agents_cannot_change_settings(agent_client):
    response = agent_client.post(
        "/crm/settings/messages/", {"language": "en", "handoff": "x", "takeover": "y"}
    )
    assert response.status_code == 403


@pytest.mark.django_db
def test_posts_without_a_csrf_token_are_rejected(agent, escalate):
    escalation = escalate()
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    response = client.post(f"/crm/escalations/{escalation.pk}/take-over/")
    assert response.status_code == 403
    escalation.refresh_from_db()
    assert escalation.status == "queued"


@pytest.mark.django_db
def test_pages_render_a_csrf_token_for_htmx_and_every_form(agent, escalate):
    escalation = escalate()
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    html = client.get(f"/crm/conversations/{escalation.conversation_id}/").content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert html.count("csrfmiddlewaretoken") >= html.count('method="post"')
    token = client.cookies["csrftoken"].value
    response = client.post(
        f"/crm/escalations/{escalation.pk}/take-over/",
        HTTP_X_CSRFTOKEN=token,
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="conversation-panel",
    )
    assert response.status_code == 200
    escalation.refresh_from_db()
    assert escalation.status == "claimed"


@pytest.mark.django_db
def test_the_login_page_logs_an_agent_in(client, agent):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert b'name="password"' in page.content
    response = client.post("/accounts/login/", {"username": "marina", "password": "pw"})
    assert response.status_code == 302
    assert response["Location"] == "/crm/"
    assert client.get("/crm/", follow=True).redirect_chain[-1][0] == "/crm/live-escalation/"


@pytest.mark.django_db
def test_a_wrong_password_shows_an_error_not_a_crash(client, agent):
    response = client.post("/accounts/login/", {"username": "marina", "password": "nope"})
    assert response.status_code == 200
    assert b'role="alert"' in response.content


@pytest.mark.django_db
def test_an_expired_session_under_htmx_sends_the_whole_page_to_login(client):
    response = client.get(
        "/crm/live-escalation/?priority=high",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="queue-results",
        HTTP_HX_CURRENT_URL="http://testserver/crm/live-escalation/?priority=high",
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == (
        "/accounts/login/?next=/crm/live-escalation/%3Fpriority%3Dhigh"
    )
