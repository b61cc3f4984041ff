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


def test_customer_texts_in_the_admin_refuse_unknown_placeholders(manager_client):
    from crm.models import CustomerText

    url = reverse("admin:crm_customertext_add")
    page = manager_client.post(
        url, {"kind": "handoff", "language": "de", "text": "Warte {minutes}"}
    )
    assert page.status_code == 200 and "unknown placeholders" in page.content.decode()
    assert not CustomerText.objects.exists()
    manager_client.post(url, {"kind": "handoff", "language": "de", "text": "Warte {wait}"})
    assert CustomerText.objects.get().text == "Warte {wait}"


def test_the_admin_refuses_a_claude_band_out_of_order(manager_client):
    from crm.models import Assistant

    assistant = Assistant.objects.first()
    url = reverse("admin:crm_assistant_change", args=[assistant.pk])
    form = {
        "name": assistant.name,
        "instructions": assistant.instructions,
        "backend": "local",
        "handoff_enabled": "on",
        "sensitivity": "0.5",
        "claude_band_low": "0.7",
        "claude_band_high": "0.3",
        "sentiment_threshold": "0.6",
        "confidence_threshold": "0.45",
        "loop_threshold": "2",
        "always_human_topics": '["refund"]',
    }
    refused = manager_client.post(url, form)
    assert refused.status_code == 200  # the form again, with the error
    assert "The Claude band needs 0 ≤ from &lt; to ≤ 1." in refused.content.decode()
    assistant.refresh_from_db()
    assert (assistant.claude_band_low, assistant.claude_band_high) == (0.2, 0.8)
    saved = manager_client.post(url, {**form, "claude_band_low": "0.3", "claude_band_high": "0.7"})
    assert saved.status_code == 302
    assistant.refresh_from_db()
    assert (assistant.claude_band_low, assistant.claude_band_high) == (0.3, 0.7)
