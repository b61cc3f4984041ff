"""Outbound webhook receivers are resolved at every delivery: a name that resolves to a
loopback, private, link-local or reserved address is refused (the delivery records why), and a
public one is called on the very address that was checked, with its name in Host and SNI."""

import httpx
import pytest

from integrations import services
from integrations.models import WebhookDelivery
from integrations.transport import static_resolver, use_resolver, use_transport

pytestmark = pytest.mark.django_db

URL = "https://hooks.customer-site.test/escalations"


@pytest.fixture
def receiver():
    received = []

    def handler(request):
        received.append(request)
        return httpx.Response(204)

    with use_transport(httpx.MockTransport(handler)):
        yield received


def one_delivery():
    subscription = services.create_webhook_subscription(
        url=URL, events=["escalation.created"], secret="whsec_test_secret_123"
    )
    return WebhookDelivery.objects.create(
        subscription=subscription, event="escalation.created", payload={"id": 1}
    )


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.10", "169.254.169.254", "::1", "fd00::1", "240.0.0.1"],
)
def test_a_name_resolving_to_a_non_public_address_is_refused(receiver, address):
    delivery = one_delivery()
    with use_resolver(static_resolver({"hooks.customer-site.test": address})):
        services.attempt_webhook_delivery(delivery_id=delivery.pk, final=True)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert "non-public address" in delivery.last_error
    assert receiver == []  # nothing was sent anywhere


def test_a_public_name_is_called_on_the_address_that_was_checked(receiver):
    delivery = one_delivery()
    with use_resolver(static_resolver({"hooks.customer-site.test": "93.184.215.14"})):
        services.attempt_webhook_delivery(delivery_id=delivery.pk, final=True)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    [request] = receiver
    assert request.url.host == "93.184.215.14"
    assert request.url.path == "/escalations"
    assert request.headers["Host"] == "hooks.customer-site.test"
    assert request.extensions["sni_hostname"] == "hooks.customer-site.test"


def test_an_unknown_name_is_a_recorded_failure_not_a_crash(receiver):
    delivery = one_delivery()
    with use_resolver(static_resolver({})):
        services.attempt_webhook_delivery(delivery_id=delivery.pk, final=True)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert "Cannot resolve" in delivery.last_error
