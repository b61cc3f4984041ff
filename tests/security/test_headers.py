"""A strict Content-Security-Policy on every page (scripts and styles from our own static files
only, and no inline script or style to need more), Swagger UI from our own static files, and no
caching of pages or API answers that carry CRM or customer data."""

import re

import pytest
from django.test import Client

from tests.factories import AgentFactory

PAGES = [
    "/crm/live-escalation/",
    "/crm/conversations/",
    "/crm/conversations/{conversation}/",
    "/crm/tickets/",
    "/crm/analytics/",
    "/crm/settings/",
    "/accounts/login/",
    "/widget/demo/",
    "/api/docs/",
    "/admin/",
]
INLINE_HANDLER = re.compile(r"\s(on[a-z]+|hx-on[:\w-]*)\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.IGNORECASE)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


@pytest.fixture
def manager_client(db):
    client = Client()
    manager = AgentFactory(username="morgan", role="manager")
    manager.is_superuser = True  # the admin index too
    manager.save()
    client.force_login(manager)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_pages_carry_a_strict_csp_and_have_no_inline_script(manager_client, url, conversation):
    url = url.format(conversation=conversation.pk)
    response = manager_client.get(url, follow=True)
    assert response.status_code == 200
    policy = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    html = response.content.decode()
    for attributes in SCRIPT_TAG.findall(html):
        assert "src=" in attributes, f"an inline <script> on {url}"
    assert not INLINE_HANDLER.findall(html), f"an inline event handler on {url}"
    assert not INLINE_STYLE.findall(html), f"an inline style on {url}"


@pytest.mark.django_db
def test_swagger_ui_comes_from_our_static_files(client):
    html = client.get("/api/docs/").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-dist" in source for source in sources)
    assert all(source.startswith("/") for source in sources), sources  # nothing from a CDN


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/crm/live-escalation/", "/crm/conversations/", "/api/v1/"])
def test_data_pages_and_api_answers_are_not_stored(manager_client, url):
    response = manager_client.get(url)
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= directives


@pytest.mark.django_db
def test_the_widget_script_keeps_its_own_public_caching(client):
    assert client.get("/widget.js")["Cache-Control"] == "public, max-age=300"
