"""API fixtures: token-authenticated clients (the throttles' cache is emptied for every test in
tests/conftest.py)."""

import pytest
from rest_framework.test import APIClient

from integrations import services as integration_services
from tests.factories import AgentFactory, ChannelFactory


def token_client(user, scopes="read,write") -> APIClient:
    _token, raw = integration_services.create_api_token(owner=user, name="test", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    client.raw_token = raw
    return client


@pytest.fixture
def make_client(db):
    return token_client


@pytest.fixture
def api(agent):
    """Marina's read+write token."""
    return token_client(agent, "read,write")


@pytest.fixture
def reader(db):
    return token_client(AgentFactory(display_name="Robin", username="robin"), "read")


@pytest.fixture
def manager(db):
    return token_client(
        AgentFactory(display_name="Morgan", username="morgan", role="manager"),
        "read,write,manage",
    )


@pytest.fixture
def anonymous():
    return APIClient()


@pytest.fixture
def api_channel(db):
    return ChannelFactory(kind="api", key="api-main")


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]
