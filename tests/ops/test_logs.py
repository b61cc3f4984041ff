"""JSON log lines carry the request id and the conversation id, from HTTP requests and tasks."""

import asyncio
import io
import json
import logging
import sys

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from crm import services as crm_services
from crm.logcontext import ContextFilter
from tests.faults.services import (
    Product,
    database_url_of_tests,
    free_port,
    port_open,
    product_env,
    wait_for,
)
from tests.faults.sockets import open_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines():
    """A handler built like the console handler of settings.LOGGING in json mode."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    config = settings.LOGGING["formatters"]["json"]
    handler.setFormatter(JsonFormatter(config["fmt"], rename_fields=config["rename_fields"]))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.setLevel(previous)
    root.removeHandler(handler)


def test_a_request_log_line_carries_the_callers_request_id_and_the_conversation(
    client, agent, json_lines
):
    client.force_login(agent)
    response = client.get("/crm/conversations/987654/", HTTP_X_REQUEST_ID="lb-abc.123")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "lb-abc.123"
    line = next(line for line in json_lines() if line["logger"] == "django.request")
    assert line["request_id"] == "lb-abc.123"
    assert line["conversation_id"] == 987654
    assert {"time", "level", "message"} <= set(line)


def test_a_request_without_a_sane_id_gets_one(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="<script>")
    # the ops endpoints answer before the context middleware; a normal page gets an id
    page = client.get("/accounts/login/", HTTP_X_REQUEST_ID="x" * 200)
    assert response.status_code == 200
    assert len(page["X-Request-ID"]) == 32 and page["X-Request-ID"] != "x" * 200


def test_a_task_log_line_carries_the_task_id_and_the_conversation(
    conversation, django_capture_on_commit_callbacks, json_lines
):
    with django_capture_on_commit_callbacks(execute=True):
        crm_services.receive_customer_message(
            conversation=conversation, text="I want to speak to a person"
        )
    line = next(line for line in json_lines() if line["logger"] == "escalation.pipeline")
    assert line["request_id"].startswith("task-")
    assert line["conversation_id"] == conversation.pk
    assert "escalate (request)" in line["message"]


@pytest.mark.django_db(transaction=True)
def test_uvicorns_own_lines_are_json_lines_too(conversation):
    """A worker's start, its sockets' "[accepted]" / "connection open" and its stop: uvicorn logs
    them itself, in its own plain format unless settings route them through the JSON handler."""
    from django.db import connection

    database = (
        {"DATABASE_URL": database_url_of_tests()}
        if connection.vendor == "postgresql"
        else {"DATABASE_URL": None, "SQLITE_PATH": str(connection.settings_dict["NAME"])}
    )
    port = free_port()
    server = Product(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "info",
        ],
        product_env(LOG_FORMAT="json", LOG_LEVEL="INFO", REDIS_URL=None, **database),
        "uvicorn-json-logs",
    ).start()
    try:
        wait_for(lambda: port_open(port) or not server.alive(), timeout=60, what="uvicorn")

        async def visit():
            customer = await open_customer(port, conversation)
            await customer.close()

        asyncio.run(visit())
        wait_for(lambda: "connection open" in server.log(), timeout=10, what="the socket logged")
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    said = {line["message"] for line in lines if line["logger"].startswith("uvicorn")}
    assert any(message.startswith("Started server process") for message in said), said
    assert any(message.endswith("[accepted]") for message in said), said
    assert "connection open" in said and "Shutting down" in said
    assert not any("color_message" in line for line in lines)
    # the customer's token is a credential for the conversation: not in the logs
    assert conversation.customer_token not in server.log()
    assert any("?token=[redacted]" in message for message in said), said
