"""Outbound webhooks: subscriptions (admin and API), one outbox row per event and subscriber
written in the causing transaction, signed deliveries with retries and a delivery log."""

import json
from datetime import timedelta

import httpx
import pytest
from django.db import transaction
from django.utils import timezone

from escalation import services as escalation_services
from escalation.models import Priority
from integrations import services, tasks
from integrations.models import WebhookDelivery, WebhookSubscription
from integrations.transport import use_transport
from tests.api.conftest import error_of
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    received, status = [], {"code": 200}

    def handler(request):
        received.append(request)
        return httpx.Response(status["code"])

    with use_transport(httpx.MockTransport(handler)):
        yield received, status


@pytest.fixture
def no_wait(monkeypatch):
    waits = []
    monkeypatch.setattr(tasks, "backoff_seconds", lambda n: waits.append(n) or 0)
    return waits


def subscribe(*events, url="https://example.com/hook"):
    return services.create_webhook_subscription(url=url, events=list(events), secret="s" * 20)


def escalate(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        escalation, _ = escalation_services.escalate_conversation(
            conversation=ConversationFactory(),
            reason="sentiment",
            priority=Priority.HIGH,
            triggered_by="detection",
        )
    return escalation


def test_each_lifecycle_event_reaches_its_subscribers(
    receiver, agent, django_capture_on_commit_callbacks
):
    received, _ = receiver
    everything = subscribe(
        "escalation.created", "escalation.claimed", "escalation.resolved", "ticket.created"
    )
    subscribe("message.created", url="https://other.example.com/")
    escalation = escalate(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    with django_capture_on_commit_callbacks(execute=True):
        escalation_services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    events = list(everything.deliveries.order_by("id").values_list("event", "status"))
    assert events == [
        ("ticket.created", "succeeded"),
        ("escalation.created", "succeeded"),
        ("escalation.claimed", "succeeded"),
        ("escalation.resolved", "succeeded"),
    ]
    claimed = json.loads(
        next(
            r for r in received if r.headers["X-LiveEscalation-Event"] == "escalation.claimed"
        ).content
    )
    assert claimed["data"]["escalation"]["claimed_by"] == {"id": agent.pk, "name": "Marina"}
    # the message subscriber heard about the messages only (handoff, takeover...), no notes
    other = WebhookDelivery.objects.exclude(subscription=everything)
    assert set(other.values_list("event", flat=True)) == {"message.created"}


def test_a_rolled_back_change_sends_nothing(receiver):
    received, _ = receiver
    subscribe("escalation.created")
    with pytest.raises(RuntimeError), transaction.atomic():
        escalation_services.escalate_conversation(
            conversation=ConversationFactory(),
            reason="request",
            priority=Priority.NORMAL,
            triggered_by="detection",
        )
        raise RuntimeError("something later failed")
    assert not WebhookDelivery.objects.exists() and received == []


def test_deliveries_are_signed_with_a_timestamp(receiver, django_capture_on_commit_callbacks):
    received, _ = receiver
    subscription = subscribe("escalation.created")
    escalate(django_capture_on_commit_callbacks)
    request = received[-1]
    header = request.headers["X-LiveEscalation-Signature"]
    timestamp = request.headers["X-LiveEscalation-Timestamp"]
    assert header.startswith(f"t={timestamp},v1=")
    assert services.verify_signature(subscription.secret, header, request.content)
    assert not services.verify_signature(subscription.secret, header, request.content + b" ")
    old = services.sign(subscription.secret, int(timestamp) - 3600, request.content)
    assert not services.verify_signature(subscription.secret, old, request.content)


def test_failures_are_retried_with_backoff_then_logged_as_failed(
    receiver, no_wait, django_capture_on_commit_callbacks
):
    received, status = receiver
    status["code"] = 502
    subscribe("escalation.created")
    escalate(django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert len(received) == tasks.MAX_ATTEMPTS == delivery.attempts
    assert no_wait == list(range(tasks.MAX_ATTEMPTS - 1))
    assert delivery.status == "failed" and delivery.response_status == 502
    assert "502" in delivery.last_error


def test_a_receiver_that_recovers_gets_the_delivery(
    receiver, no_wait, django_capture_on_commit_callbacks, monkeypatch
):
    received, status = receiver
    original = services.attempt_webhook_delivery

    def flaky(**kwargs):
        status["code"] = 500 if len(received) < 2 else 200
        return original(**kwargs)

    monkeypatch.setattr(services, "attempt_webhook_delivery", flaky)
    subscribe("escalation.created")
    escalate(django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("succeeded", 3, 200)


def test_backoff_grows_and_is_capped():
    assert 30 <= tasks.backoff_seconds(0) <= 37
    assert 240 <= tasks.backoff_seconds(3) <= 300
    assert tasks.backoff_seconds(30) <= 4500


def test_a_lost_task_is_picked_up_by_the_sweep(receiver):
    received, _ = receiver
    subscription = subscribe("ticket.created")
    delivery = WebhookDelivery.objects.create(
        subscription=subscription, event="ticket.created", payload={"ticket": {"id": 1}}
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(minutes=20)
    )
    assert tasks.resend_stuck_webhook_deliveries.delay().get() == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(received) == 1


def test_the_sweep_leaves_live_retry_chains_alone_and_gives_up_in_the_end(receiver):
    """A retry chain waits up to 4,500 s between attempts: a sweep that re-queued rows idle
    for less would start a second chain beside the live one."""
    subscription = subscribe("ticket.created")
    now = timezone.now()

    def pending(**fields):
        delivery = WebhookDelivery.objects.create(
            subscription=subscription, event="ticket.created", payload={}
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            created_at=now - timedelta(hours=3), **fields
        )
        return delivery.pk

    waiting = pending(attempts=6, last_attempt_at=now - timedelta(seconds=1920 + 480))
    lost = pending(attempts=8, last_attempt_at=now - timedelta(hours=2))
    sending = pending(attempts=1, claim="x", claimed_at=now - timedelta(seconds=5))
    exhausted = pending(
        attempts=services.WEBHOOK_SWEEP_MAX_ATTEMPTS, last_attempt_at=now - timedelta(hours=2)
    )
    assert services.pending_delivery_ids(now=now) == [lost]
    assert WebhookDelivery.objects.get(pk=exhausted).status == "failed"
    assert {WebhookDelivery.objects.get(pk=pk).status for pk in (waiting, lost, sending)} == {
        "pending"
    }


# --- Managing subscriptions over the API ------------------------------------------------------


def test_manage_subscriptions_and_read_the_log(
    manager, receiver, no_wait, django_capture_on_commit_callbacks
):
    received, status = receiver
    created = manager.post(
        "/api/v1/webhooks/",
        {"url": "https://crm.example.com/hooks", "events": ["escalation.created"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"].startswith("whsec_")
    listed = manager.get("/api/v1/webhooks/").json()["results"]
    assert "secret" not in listed[0]
    status["code"] = 410
    escalate(django_capture_on_commit_callbacks)
    log = manager.get(f"/api/v1/webhooks/{body['id']}/deliveries/").json()["results"]
    assert log[0]["status"] == "failed" and log[0]["response_status"] == 410
    status["code"] = 200
    with django_capture_on_commit_callbacks(execute=True):
        again = manager.post(f"/api/v1/webhooks/deliveries/{log[0]['id']}/redeliver/")
    assert again.status_code == 202
    assert WebhookDelivery.objects.get(pk=log[0]["id"]).status == "succeeded"
    changed = manager.patch(f"/api/v1/webhooks/{body['id']}/", {"is_active": False}, format="json")
    assert changed.status_code == 200 and changed.json()["is_active"] is False
    assert manager.delete(f"/api/v1/webhooks/{body['id']}/").status_code == 204
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://x.example.com", "events": ["ticket.created"]},
        {"url": "https://x.example.com", "events": []},
        {"url": "https://x.example.com", "events": ["escalation.exploded"]},
        {"url": "https://x.example.com", "events": ["ticket.created"], "secret": "short"},
        {"url": "http://x.example.com", "events": ["ticket.created"]},
        {"url": "https://127.0.0.1:8000/h", "events": ["ticket.created"]},
        {"url": "https://[::1]/h", "events": ["ticket.created"]},
        {"url": "https://169.254.169.254/latest", "events": ["ticket.created"]},
        {"url": "https://10.1.2.3/h", "events": ["ticket.created"]},
        {"url": "https://192.168.0.10/h", "events": ["ticket.created"]},
        {"url": "https://localhost/h", "events": ["ticket.created"]},
        {"url": "https://printer.local/h", "events": ["ticket.created"]},
    ],
)
def test_bad_subscriptions_are_400(manager, body):
    response = manager.post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 400
    assert error_of(response)["fields"]


def test_internal_targets_are_allowed_only_in_debug(settings):
    with pytest.raises(services.InvalidSubscription):
        subscribe("ticket.created", url="http://127.0.0.1:8001/hook")
    with pytest.raises(services.InvalidSubscription):  # changing the URL later is checked too
        services.update_webhook_subscription(
            subscription=subscribe("ticket.created"), url="https://127.0.0.1/hook"
        )
    settings.DEBUG = True
    assert subscribe("ticket.created", url="http://127.0.0.1:8001/hook").pk
    assert subscribe("ticket.created", url="https://203.0.113.9/hook").pk


def test_an_inactive_subscription_is_created_inactive_at_once(manager, monkeypatch):
    monkeypatch.setattr(
        services, "update_webhook_subscription", lambda **kw: pytest.fail("second write")
    )
    created = manager.post(
        "/api/v1/webhooks/",
        {"url": "https://x.example.com/h", "events": ["ticket.created"], "is_active": False},
        format="json",
    )
    assert created.status_code == 201 and created.json()["is_active"] is False
    assert WebhookSubscription.objects.get().is_active is False


def test_write_scope_is_not_enough_to_manage_webhooks(api):
    response = api.post(
        "/api/v1/webhooks/",
        {"url": "https://x.example.com", "events": ["ticket.created"]},
        format="json",
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "insufficient_scope"


def test_admin_creates_a_subscription(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="boss", is_superuser=True))
    response = client.post(
        "/admin/integrations/webhooksubscription/add/",
        {
            "url": "https://erp.example.com/in",
            "events": ["ticket.created"],
            "description": "ERP",
            "secret": "whsec_abcdefghijklmnop",
            "is_active": "on",
            "deliveries-TOTAL_FORMS": "0",
            "deliveries-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    subscription = WebhookSubscription.objects.get()
    assert subscription.events == ["ticket.created"] and subscription.description == "ERP"
