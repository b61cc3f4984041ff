"""Two app nodes (each a honcho with uvicorn and a Celery worker, beat on the first only) sharing
PostgreSQL and Redis: a customer on node A is handed off, the agent on node B sees it, two agents
race to take it over through different nodes (exactly one wins), and the live chat crosses
nodes both ways."""

import asyncio
import threading
import urllib.error
import urllib.request

import pytest

from escalation.models import Escalation, EscalationEvent
from integrations.services import create_api_token
from tests.bench.world import session_cookie
from tests.factories import AgentFactory
from tests.faults.services import RedisServer, database_url_of_tests
from tests.faults.sockets import open_agent, open_customer

from .stack import Node

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.real_celery,
]


def take_over(port: int, escalation_id: int, token: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/escalations/{escalation_id}/take-over/",
        method="POST",
        data=b"{}",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def race(attempts: list[tuple[int, int, str]]) -> list[int]:
    """All take-overs at once, each on its own thread, released together."""
    barrier = threading.Barrier(len(attempts))
    results: list[int | None] = [None] * len(attempts)

    def attempt(index, port, escalation_id, token):
        barrier.wait(timeout=30)
        results[index] = take_over(port, escalation_id, token)

    threads = [threading.Thread(target=attempt, args=(i, *args)) for i, args in enumerate(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_a_handoff_takeover_and_live_chat_cross_two_nodes(conversation, need_redis_server):
    marina = AgentFactory(display_name="Marina", username="marina")
    alex = AgentFactory(display_name="Alex", username="alex")
    tokens = {
        agent.pk: create_api_token(owner=agent, name="two nodes", scopes=["read", "write"])[1]
        for agent in (marina, alex)
    }
    cookies = {agent.pk: session_cookie(agent) for agent in (marina, alex)}
    conversation.channel.allowed_origins = ["http://127.0.0.1"]
    conversation.channel.save(update_fields=["allowed_origins"])

    redis = RedisServer().start()
    shared = {"DATABASE_URL": database_url_of_tests(), "REDIS_URL": redis.url()}
    node_a = Node(env=shared, web_concurrency=1)
    node_b = Node(env=shared, processes=("web", "worker"), web_concurrency=1)
    try:
        node_a.start()
        node_b.start()

        async def handoff():
            agents = {pk: await open_agent(node_b.port, cookie) for pk, cookie in cookies.items()}
            customer = await open_customer(node_a.port, conversation)
            await customer.send({"type": "message", "text": "I want to speak to a person"})
            added = await agents[marina.pk].wait_for(
                lambda f: f["type"] == "queue.added", "queue.added on node B", timeout=45
            )
            return agents, customer, added["escalation"]

        async def chat(agent, customer):
            await customer.wait_for(
                lambda f: f["type"] == "conversation.mode" and f["mode"] == "agent",
                "mode agent on node A",
            )
            await customer.wait_for(
                lambda f: (
                    f["type"] == "message.created"
                    and f["message"]["text"].startswith("Now speaking with")
                ),
                "the takeover notice on node A",
            )
            await agent.send({"type": "subscribe", "conversation": conversation.pk})
            await agent.send(
                {"type": "reply", "conversation": conversation.pk, "text": "Hi, from node B"}
            )
            await customer.wait_for(
                lambda f: (
                    f["type"] == "message.created" and f["message"]["text"] == "Hi, from node B"
                ),
                "the agent's reply (node B) on the customer's socket (node A)",
            )
            await customer.send({"type": "message", "text": "Thanks, from node A"})
            await agent.wait_for(
                lambda f: (
                    f["type"] == "message.created" and f["message"]["text"] == "Thanks, from node A"
                ),
                "the customer's message (node A) on the agent's socket (node B)",
            )

        loop = asyncio.new_event_loop()
        try:
            agents, customer, escalation_id = loop.run_until_complete(
                asyncio.wait_for(handoff(), 90)
            )
            # Marina through node B and Alex through node A, at the same instant.
            statuses = race(
                [
                    (node_b.port, escalation_id, tokens[marina.pk]),
                    (node_a.port, escalation_id, tokens[alex.pk]),
                ]
            )
            winner = marina if statuses[0] == 200 else alex
            try:  # the winner's socket (node B) chats with the customer (node A)
                loop.run_until_complete(asyncio.wait_for(chat(agents[winner.pk], customer), 90))
            finally:
                for socket in (customer, *agents.values()):
                    loop.run_until_complete(socket.close())
        finally:
            loop.close()
    finally:
        for node in (node_b, node_a):
            node.stop()
            node.kill()
        redis.stop()

    assert sorted(statuses) == [200, 409], statuses
    escalation = Escalation.objects.get(pk=escalation_id)
    assert escalation.status == Escalation.Status.CLAIMED
    assert escalation.claimed_by_id == winner.pk
    assert escalation.events.filter(kind=EscalationEvent.Kind.CLAIMED).count() == 1
