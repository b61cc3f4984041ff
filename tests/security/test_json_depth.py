"""JSON nested past MAX_JSON_DEPTH is refused before it is parsed — 400 on the API and the
widget's start, an error frame on the socket — with no traceback logged (1,000 levels of ``[``,
about 2 KB, used to overflow the parser into a 500). Brackets inside strings don't count."""

import logging

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from crm.limits import json_depth_exceeds
from tests.api.conftest import error_of, token_client
from tests.crm.test_customer_socket import (
    TIMEOUT,
    connect_and_drain,
    customer_socket,
)
from tests.crm.test_widget import start
from tests.factories import AgentFactory, ChannelFactory
from tests.security.test_socket_limits import acked

DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"text": ' + DEEP + "}"


def test_depth_is_counted_outside_strings_only():
    assert json_depth_exceeds("[[[]]]", 2)
    assert not json_depth_exceeds("[[]]", 2)
    assert not json_depth_exceeds('["[[[[[[", "\\"[[[["]', 1)


@pytest.mark.django_db
def test_the_api_answers_400_without_a_traceback(caplog):
    api = token_client(AgentFactory(username="marina"), "read,write")
    ChannelFactory(kind="api", key="api-main")
    with caplog.at_level(logging.WARNING):
        response = api.post("/api/v1/conversations/", DEEP_OBJECT, content_type="application/json")
    assert response.status_code == 400
    assert "deeper than" in error_of(response)["message"]
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.django_db
def test_the_widget_start_answers_400_without_a_traceback(client, caplog):
    ChannelFactory(key="shop-key")
    with caplog.at_level(logging.WARNING):
        response = start(client, DEEP_OBJECT)
    assert response.status_code == 400
    assert response.json()["code"] == "too_deep"
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.django_db(transaction=True)
async def test_the_socket_answers_an_error_frame_and_stays_open(shop_conversation):
    communicator = customer_socket(shop_conversation)
    await connect_and_drain(communicator)
    await communicator.send_to(text_data='{"type": "message", "text": ' + DEEP + "}")
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert (frame["type"], frame["code"]) == ("error", "too_deep")
    await communicator.send_json_to({"type": "message", "text": "still here", "client_id": "c1"})
    ack = await acked(communicator, "c1")
    assert ack["message"]["text"] == "still here"
    await communicator.disconnect()
    await sync_to_async(connections.close_all)()
