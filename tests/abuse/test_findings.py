"""Findings 3-8 against uvicorn on loopback, as an attacker would meet them:

3. 40 wrong passwords for one agent in 11 s all got 200, and the right one then worked;
4. a deactivated agent's open /ws/agent/ socket kept subscribing and posting;
5. one bad item in a signed webhook batch was a 500 and lost the later messages;
6. 1,000 levels of JSON nesting were a 500 with a traceback (API, widget, webhooks) and a
   silently dropped socket frame;
7. no Content-Security-Policy, and no Cache-Control on pages with customer data;
8. every socket refusal reached the browser as an HTTP 403 at the handshake.
"""

import asyncio
import hashlib
import hmac
import json
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from crm.models import Message
from integrations import services as integration_services
from tests.factories import AgentFactory, ChannelFactory, ConversationFactory
from tests.faults.test_redis_outage import session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

TIMEOUT = 20
DEEP = "[" * 1000 + "]" * 1000


def http(port) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT)


def csrf_login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    page = client.get("/accounts/login/")
    token = page.cookies.get("csrftoken") or client.cookies.get("csrftoken")
    return client.post(
        "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": str(client.base_url) + "/accounts/login/"},
    )


def test_forty_wrong_passwords_lock_the_account_at_that_address(product):
    agent = AgentFactory(username="target")
    agent.set_password("the-right-password-4821")
    agent.save()
    statuses = []
    with http(product.port) as client:
        for _ in range(40):
            statuses.append(csrf_login(client, "target", "guess").status_code)
        right = csrf_login(client, "target", "the-right-password-4821")
    print(
        f"\n40 wrong passwords: {statuses.count(200)} x 200, {statuses.count(429)} x 429; "
        f"then the right one: {right.status_code}"
    )
    assert statuses[:4] == [200] * 4 and set(statuses[4:]) == {429}
    assert right.status_code == 429


async def test_a_deactivated_agents_open_socket_is_closed_within_seconds(product, same_layer):
    agent = await sync_to_async(AgentFactory)(username="leaver")
    cookie = await sync_to_async(session_cookie)(agent)
    conversation = await sync_to_async(ConversationFactory)()
    ws = await connect(
        f"ws://127.0.0.1:{product.port}/ws/agent/",
        origin=f"http://127.0.0.1:{product.port}",
        additional_headers={"Cookie": cookie},
        open_timeout=TIMEOUT,
    )
    assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "connection.state"

    def deactivate():
        user = get_user_model().objects.get(pk=agent.pk)
        user.is_active = False
        user.is_staff = False
        user.save()

    started = time.monotonic()
    await sync_to_async(deactivate)()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    print(
        f"\nrevoked socket closed with {closed.value.rcvd.code} "
        f"after {(time.monotonic() - started) * 1000:.0f} ms"
    )
    assert closed.value.rcvd.code == 4403
    # ... and a new one is refused with the code the browser can read
    ws = await connect(
        f"ws://127.0.0.1:{product.port}/ws/agent/",
        origin=f"http://127.0.0.1:{product.port}",
        additional_headers={"Cookie": cookie},
        open_timeout=TIMEOUT,
    )
    with pytest.raises(ConnectionClosed) as refused:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert refused.value.rcvd.code == 4401  # the session went with the user's access
    assert not await sync_to_async(Message.objects.filter(conversation=conversation).exists)()


async def test_socket_refusals_reach_the_client_with_their_code(product):
    conversation = await sync_to_async(ConversationFactory)()
    cases = {
        f"/ws/conversations/{conversation.pk}/?token=wrong": 4403,
        f"/ws/conversations/{conversation.pk}/?token={conversation.customer_token}&after=x": 4400,
        "/ws/agent/": 4401,
        "/ws/nowhere/": 4404,
    }
    for path, code in cases.items():
        ws = await connect(
            f"ws://127.0.0.1:{product.port}{path}",
            origin=f"http://127.0.0.1:{product.port}",
            open_timeout=TIMEOUT,
        )
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert closed.value.rcvd.code == code, path


def test_a_bad_item_in_a_signed_batch_is_skipped_and_the_rest_stored(product):
    ChannelFactory(kind="whatsapp", key="wa-abuse", webhook_secret="meta-secret")
    items = [
        ("4915", "wamid.A", "first"),
        ("4915", "wamid." + "x" * 300, "bad"),
        ("4916", "wamid.C", "after the bad one"),
    ]
    payload = {
        "entry": [
            {
                "changes": [
                    {
                        "value": {
                            "messages": [
                                {"from": sender, "id": mid, "type": "text", "text": {"body": text}}
                                for sender, mid, text in items
                            ]
                        }
                    }
                ]
            }
        ]
    }
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(b"meta-secret", body, hashlib.sha256).hexdigest()
    with http(product.port) as client:
        response = client.post(
            "/api/webhooks/whatsapp/wa-abuse/",
            content=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        )
    print(f"\nbatch with a bad item: HTTP {response.status_code} {response.json()}")
    assert response.status_code == 200
    assert response.json() == {"received": 3, "stored": 2, "skipped": 1}
    stored = Message.objects.filter(sender="customer").values_list("text", flat=True)
    assert sorted(stored) == ["after the bad one", "first"]


def test_deep_json_is_400_everywhere(product):
    ChannelFactory(key="shop-abuse")
    ChannelFactory(kind="whatsapp", key="wa-deep", webhook_secret="meta-secret")
    _token, raw_token = integration_services.create_api_token(
        owner=AgentFactory(username="integrator"), name="abuse", scopes="read,write"
    )
    body = ('{"entry": ' + DEEP + "}").encode()
    signature = "sha256=" + hmac.new(b"meta-secret", body, hashlib.sha256).hexdigest()
    with http(product.port) as client:
        origin = {"Origin": f"http://127.0.0.1:{product.port}", "Content-Type": "application/json"}
        answers = {
            "api": client.post(
                "/api/v1/conversations/",
                content=body,
                headers={"Content-Type": "application/json", "Authorization": f"Token {raw_token}"},
            ).status_code,
            "widget": client.post(
                "/widget/conversations/", content=body, headers=origin
            ).status_code,
            "webhook": client.post(
                "/api/webhooks/whatsapp/wa-deep/",
                content=body,
                headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
            ).status_code,
        }
    print(f"\n1,000 levels of nesting: {answers}")
    assert answers == {"api": 400, "widget": 400, "webhook": 400}


def test_pages_carry_the_csp_and_no_store(product):
    with http(product.port) as client:
        login = client.get("/accounts/login/")
        docs = client.get("/api/docs/")
    assert "script-src 'self'" in login.headers["Content-Security-Policy"]
    assert "no-store" in login.headers["Cache-Control"]
    assert "cdn" not in docs.text.lower()
