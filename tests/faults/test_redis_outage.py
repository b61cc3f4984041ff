"""Redis (the channel layer and the Celery broker) dies in the middle of a conversation.

What must hold: every customer message sent during the outage is stored and acknowledged to the
customer; once Redis is back the agent's open socket receives them (catch-up from the database),
a reconnecting widget gets them by replay (``?after=``), and live delivery works again, all
without restarting the ASGI server.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from crm.models import Message
from tests.bench.world import session_cookie

from .services import RedisServer, database_url_of_tests, product_env, start_uvicorn
from .sockets import open_agent, open_customer

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.real_celery,
]


def message_with(text: str):
    return lambda f: f["type"] == "message.created" and f["message"]["text"] == text


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
