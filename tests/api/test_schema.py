"""The OpenAPI schema and the server agree: schemathesis generates requests for every operation
from /api/schema/ (valid ones and ones the schema forbids) and runs all its checks — no 500,
every response (status code, content type, headers, body) documented, what the schema allows is
accepted and what it forbids is refused, auth is enforced. Outbound calls (webhook deliveries,
provider sends) go to a recording transport, never the network."""

from contextlib import contextmanager

import httpx
import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from config.wsgi import application
from escalation import services as escalation_services
from escalation.models import Priority
from integrations import services as integration_services
from integrations import transport
from tests.factories import AgentFactory, ChannelFactory, ConversationFactory

EXAMPLES_PER_OPERATION = 5


@contextmanager
def _transaction_kept_open():
    """Like Django's test client: WSGI requests must not close the test's connection."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


with _transaction_kept_open():
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def outbound():
    """Every outbound HTTP call (webhook deliveries, provider sends) answered here, recorded."""
    calls = []

    def answer(request):
        calls.append(request)
        return httpx.Response(200, json={"messages": [{"id": "wamid.test"}], "message_id": "m"})

    with transport.use_transport(httpx.MockTransport(answer)):
        yield calls


@pytest.fixture
def world(db, outbound):
    """Some of everything, so generated ids sometimes hit real rows."""
    manager = AgentFactory(display_name="Morgan", username="morgan", role="manager")
    ChannelFactory(kind="api", key="api")
    ChannelFactory(kind="whatsapp", key="wa", webhook_secret="secret", verify_token="verify")
    escalation_services.escalate_conversation(
        conversation=ConversationFactory(),
        reason="request",
        priority=Priority.HIGH,
        triggered_by="detection",
    )
    _token, raw = integration_services.create_api_token(
        owner=manager, name="schemathesis", scopes="read,write,manage"
    )
    return {"Authorization": f"Token {raw}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_the_schema(case, world):
    cache.clear()  # throttles would turn later examples into 429s
    with _transaction_kept_open():
        case.call_and_validate(headers=world)  # every check schemathesis has


def test_schema_documents_every_endpoint_and_the_error_shape(client, db):
    body = client.get("/api/schema/?format=json").json()
    paths = body["paths"]
    for path in [
        "/api/v1/conversations/",
        "/api/v1/conversations/{id}/messages/",
        "/api/v1/escalations/",
        "/api/v1/escalations/{id}/take-over/",
        "/api/v1/escalations/{id}/reassign/",
        "/api/v1/escalations/{id}/resolve/",
        "/api/v1/escalations/{id}/close/",
        "/api/v1/tickets/",
        "/api/v1/metrics/escalations/",
        "/api/v1/agents/",
        "/api/webhooks/whatsapp/{channel_key}/",
        "/api/webhooks/instagram/{channel_key}/",
    ]:
        assert path in paths, path
    take_over = paths["/api/v1/escalations/{id}/take-over/"]["post"]["responses"]
    assert {"200", "401", "403", "404", "409", "429"} <= set(take_over)
    for schema in ("Conversation", "Escalation", "EscalationDetail"):
        queue = body["components"]["schemas"][schema]["properties"]["queue"]
        assert queue["nullable"] and queue["allOf"][0]["$ref"].endswith("/QueuePlace"), schema
    error = body["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["$ref"].endswith("/ErrorDetail")
    assert {"tokenAuth", "customerToken"} <= set(body["components"]["securitySchemes"])


def test_interactive_docs_are_served(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
