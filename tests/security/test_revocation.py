"""Revoked access reaches open agent sockets: deactivating the user, removing staff, changing
the password, deleting the sessions or logging out closes the socket at once (an
``access.revoked`` event to ``agent.<id>``); and every frame re-checks, so a socket that missed
the event still cannot subscribe or post."""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session
from django.db import connections

from crm import consumers
from tests.crm.test_agent_socket import live_agent_socket, session_cookie
from tests.crm.test_customer_socket import TIMEOUT
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_db_connections():
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def marina(db):
    return AgentFactory(display_name="Marina", username="marina")


async def closed_with(communicator) -> int:
    """The close code the server sends next (frames before it are skipped)."""
    for _ in range(20):
        message = await communicator.receive_output(timeout=TIMEOUT)
        if message["type"] == "websocket.close":
            return message["code"]
    raise AssertionError("the socket was not closed")


def deactivate(user):
    user.is_active = False
    user.save()


def remove_staff(user):
    user.is_staff = False
    user.save()


def change_password(user):
    user.set_password("a-new-password-4821")
    user.save()


def delete_sessions(user):
    Session.objects.all().delete()


@pytest.mark.parametrize(
    "revoke, code",
    [
        (deactivate, consumers.CLOSE_FORBIDDEN),
        (remove_staff, consumers.CLOSE_FORBIDDEN),
        (change_password, consumers.CLOSE_NOT_LOGGED_IN),
        (delete_sessions, consumers.CLOSE_NOT_LOGGED_IN),
    ],
    ids=["deactivated", "staff removed", "password changed", "sessions deleted"],
)
async def test_a_revocation_closes_the_open_socket_at_once(marina, revoke, code):
    communicator = await live_agent_socket(marina)
    await sync_to_async(revoke)(marina)
    assert await closed_with(communicator) == code
    await communicator.disconnect()


async def test_another_agents_socket_stays_open(marina):
    alex = await sync_to_async(AgentFactory)(display_name="Alex", username="alex")
    marinas = await live_agent_socket(marina)
    alexs = await live_agent_socket(alex)
    await sync_to_async(deactivate)(marina)
    assert await closed_with(marinas) == consumers.CLOSE_FORBIDDEN
    await alexs.send_json_to({"type": "subscribe", "conversation": 999999})
    frame = await alexs.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error"  # answered: still open
    await marinas.disconnect()
    await alexs.disconnect()


async def test_every_frame_rechecks_even_without_the_event(marina, conversation, monkeypatch):
    """The event is lost (the layer was down): the next frame finds the user deactivated and
    the socket closes instead of subscribing to private notes or posting."""
    monkeypatch.setattr("crm.revocation.announce_revocation", lambda user_id: None)
    communicator = await live_agent_socket(marina)
    await sync_to_async(deactivate)(marina)
    await communicator.send_json_to(
        {"type": "subscribe", "conversation": conversation.pk, "after": 0}
    )
    assert await closed_with(communicator) == consumers.CLOSE_FORBIDDEN
    await communicator.disconnect()


async def test_logging_out_closes_the_sockets_of_that_session(marina, client):
    cookie = await sync_to_async(session_cookie)(marina)
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    communicator = WebsocketCommunicator(
        application,
        "/ws/agent/",
        headers=[(b"origin", b"http://testserver"), (b"cookie", cookie)],
    )
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    name, value = cookie.decode().split("=", 1)
    client.cookies[name] = value
    await sync_to_async(client.post)("/accounts/logout/")
    assert await closed_with(communicator) == consumers.CLOSE_NOT_LOGGED_IN
    await communicator.disconnect()
