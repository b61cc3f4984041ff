"""Redis (the channel layer and the Celery broker) dies in the middle of a conversation.

What must hold: every customer message sent during the outage is stored and acknowledged to the
customer; once Redis is back the agent's open socket receives them (catch-up from the database),
a reconnecting widget gets them by replay (``?after=``), and live delivery works again, all
without restarting the ASGI server.
"""

import asyncio
import contextlib
import json
import time

import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import connect

from crm.models import Message

from .services import RedisServer, database_url_of_tests, product_env, start_uvicorn

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.real_celery,
]

FRAME_TIMEOUT = 30.0


def session_cookie(user) -> str:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


class Socket:
    """A client socket that keeps every frame it receives, to wait for one by predicate."""

    def __init__(self, ws):
        self.ws = ws
        self.frames: list[dict] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self):
        async for raw in self.ws:
            self.frames.append(json.loads(raw))
            self._new.set()

    async def wait_for(self, predicate, what: str, timeout: float = FRAME_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for frame in self.frames[seen:]:
                if predicate(frame):
                    return frame
            seen = len(self.frames)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no frame {what} within {timeout:.0f} s; got {self.frames}")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), remaining)

    async def send(self, frame: dict) -> None:
        await self.ws.send(json.dumps(frame))

    async def close(self) -> None:
        self._reader.cancel()
        await self.ws.close()


def message_with(text: str):
    return lambda f: f["type"] == "message.created" and f["message"]["text"] == text


async def open_customer(port, conversation, after=None) -> Socket:
    url = f"ws://127.0.0.1:{port}/ws/conversations/{conversation.pk}/?token="
    url += conversation.customer_token + (f"&after={after}" if after else "")
    ws = await connect(url, origin=f"http://127.0.0.1:{port}", open_timeout=FRAME_TIMEOUT)
    socket = Socket(ws)
    await socket.wait_for(lambda f: f["type"] == "conversation.mode", "conversation.mode")
    return socket


async def open_agent(port, cookie) -> Socket:
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws/agent/",
        origin=f"http://127.0.0.1:{port}",
        additional_headers={"Cookie": cookie},
        open_timeout=FRAME_TIMEOUT,
    )
    socket = Socket(ws)
    await socket.wait_for(lambda f: f["type"] == "connection.state", "connection.state")
    return socket


@sync_to_async
def stored_texts(conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation, sender=Message.Sender.CUSTOMER)
        .order_by("id")
        .values_list("text", flat=True)
    )


async def scenario(port, redis, conversation, cookie):
    agent = await open_agent(port, cookie)
    await agent.send({"type": "subscribe", "conversation": conversation.pk})
    customer = await open_customer(port, conversation)

    await customer.send({"type": "message", "text": "before the outage"})
    before = await customer.wait_for(message_with("before the outage"), "echo before")
    await agent.wait_for(message_with("before the outage"), "live delivery before the outage")

    redis.stop(crash=True)
    during = ["during the outage 1", "during the outage 2"]
    for text in during:
        await customer.send({"type": "message", "text": text})
        # Acknowledged to the customer: it is stored (the echo is the stored row).
        # Within seconds, not a hang: enqueueing the analysis fails fast and the sweep
        # picks the message up later (measured here: about 0.6 s per message).
        await customer.wait_for(
            message_with(text), f"echo of {text!r} while Redis is down", timeout=10
        )
    assert await stored_texts(conversation) == ["before the outage", *during]

    redis.start()  # same port, empty: no groups, no queued tasks
    for text in during:
        await agent.wait_for(message_with(text), f"catch-up of {text!r} on the agent socket")

    # A widget that reconnects gets what it missed by replay, in order.
    await customer.close()
    customer = await open_customer(port, conversation, after=before["message"]["id"])
    replayed = [f["message"]["text"] for f in customer.frames if f["type"] == "message.created"]
    assert replayed[: len(during)] == during

    # Live delivery works again (groups re-joined), without restarting anything.
    await customer.send({"type": "message", "text": "after the outage"})
    await agent.wait_for(message_with("after the outage"), "live delivery after the outage")
    await customer.close()
    await agent.close()


def test_redis_outage_mid_conversation_loses_nothing(need_redis_server, conversation, agent):
    redis = RedisServer().start()
    server = None
    try:
        env = product_env(DATABASE_URL=database_url_of_tests(), REDIS_URL=redis.url())
        server, port = start_uvicorn(env)
        asyncio.run(scenario(port, redis, conversation, session_cookie(agent)))
        assert server.alive(), "the ASGI server died during the outage:\n" + server.log()[-3000:]
    finally:
        if server is not None:
            server.stop()
        redis.stop()
