"""Managers run the product from the admin: every screen renders with the demo data."""

import io

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_client(client, settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO())
    settings.DEBUG = False
    # Through the admin's own login form: django-axes checks every login against a request.
    response = client.post(
        reverse("admin:login"), {"username": "manager", "password": "demo", "next": "/admin/"}
    )
    assert response.status_code == 302
    return client


def test_manager_sees_jamies_escalation_in_the_admin(manager_client):
    page = manager_client.get(reverse("admin:escalation_escalation_changelist"))
    assert page.status_code == 200
    assert "Jamie Patel" in page.content.decode()


@pytest.mark.parametrize(
    "model",
    [
        m
        for m in admin.site._registry
        if m._meta.app_label in {"crm", "escalation", "tickets", "notifications"}
    ],
    ids=lambda m: m._meta.label,
)
def test_every_admin_list_and_detail_renders(manager_client, model):
    opts = model._meta
    listing = manager_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert listing.status_code == 200
    first = model.objects.first()
    if first is not None:
        detail = manager_client.get(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk])
        )
        assert detail.status_code == 200


def test_admin_search_and_filters_work(manager_client):
    url = reverse("admin:escalation_escalation_changelist")
    page = manager_client.get(url, {"q": "jamie", "status__exact": "queued"})
    assert page.status_code == 200
    assert "Jamie Patel" in page.content.decode()
    assert "Omar Haddad" not in page.content.decode()


def test_messages_and_conversations_cannot_be_rewritten_in_the_admin(manager_client):
    from crm.models import Message

    message = Message.objects.filter(sender="customer").first()
    url = reverse("admin:crm_message_change", args=[message.pk])
    manager_client.post(url, {"text": "rewritten", "is_private_note": "on"})
    message.refresh_from_db()
    assert message.text != "rewritten" and not message.is_private_note
    assert manager_client.get(reverse("admin:crm_message_add")).status_code == 403


def test_crm_settings_in_the_admin_refuse_unknown_placeholders(manager_client):
    from crm.models import CRMSettings

    settings_row = CRMSettings.load()
    url = reverse("admin:crm_crmsettings_change", args=[settings_row.pk])
    page = manager_client.post(
        url, {"handoff_message": "Wait {minutes}", "takeover_message": "Hi, I'm {agent_name}."}
    )
    assert page.status_code == 200 and "unknown placeholders" in page.content.decode()
    settings_row.refresh_from_db()
    assert "{wait_minutes}" in settings_row.handoff_message
