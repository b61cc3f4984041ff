"""Live delivery over the channel layer. Every publish runs after commit and never raises.

Groups (names are stable; see ARCHITECTURE.md):
- ``conversation.<id>``: customer sockets of that conversation (never private notes);
- ``staff.conversation.<id>``: agent sockets with that conversation open (everything);
- ``queue``: every agent socket (queue events);
- ``agent.<user id>``: one agent's sockets (notifications, assignments).

The database is the truth and the socket is a notification: a frame that fails to go out is
replayed from the database on reconnect (``?after=<message id>``). After-commit publishes do not
wait for Redis: they go through this process's outbox, in order (``send_soon``).
"""

import asyncio
import atexit
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.db import transaction

logger = logging.getLogger(__name__)
SEND_TIMEOUT_SECONDS = 5

QUEUE_GROUP = "queue"


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def staff_conversation_group(conversation_id: int) -> str:
    return f"staff.conversation.{conversation_id}"


def agent_group(user_id: int) -> str:
    return f"agent.{user_id}"


_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()
_outbox: asyncio.Queue | None = None  # the after-commit events of this process, in order
OUTBOX_LIMIT = 10_000  # past this (Redis down for a long while) new events are dropped, logged


def _sender_loop() -> asyncio.AbstractEventLoop:
    """One long-lived event loop per process (re-made after a fork), so sync callers such as
    Celery workers reuse one Redis connection instead of opening one per send. It also runs
    the outbox: one task sending the after-commit events one at a time, in order."""
    global _loop, _loop_pid, _outbox
    with _loop_lock:
        if _loop is None or _loop.is_closed() or _loop_pid != os.getpid():
            _loop, _loop_pid = asyncio.new_event_loop(), os.getpid()
            _outbox = asyncio.Queue(maxsize=OUTBOX_LIMIT)
            threading.Thread(target=_loop.run_forever, name="realtime-sender", daemon=True).start()
            asyncio.run_coroutine_threadsafe(_send_outbox(_outbox), _loop)
        return _loop


def _group_send(layer, group: str, event: dict) -> None:
    if isinstance(layer, RedisChannelLayer):
        # Redis layers keep a connection pool per loop, so any thread may use this loop.
        future = asyncio.run_coroutine_threadsafe(layer.group_send(group, event), _sender_loop())
        future.result(timeout=SEND_TIMEOUT_SECONDS)
    else:  # the in-memory layer's queues belong to the server's own loop
        async_to_sync(layer.group_send)(group, event)


def send_now(group: str, event: dict) -> bool:
    """Send one event to a group; False (logged) when the layer is unreachable."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        _group_send(layer, group, event)
    except Exception:
        # Once more: after a Redis restart a pooled connection fails once, then reconnects.
        try:
            _group_send(layer, group, event)
        except Exception:  # Redis down or full: the database still has everything.
            logger.warning("channel layer unavailable; %s not pushed to %s", event["type"], group)
            return False
    return True


# Celery pool processes send after-commit events inline (set in config/celery.py): a handoff
# task's first event, queue.added, is the one an agent waits for, and a sender thread working
# beside the rest of the task competes with it for the interpreter lock (measured in one process:
# the escalation row → queue.added hop about 1–3 ms later through the outbox than inline).
inline_sends = False


def send_soon(group: str, event: dict, *, sender_channel: str | None = None) -> None:
    """Send one event to a group without waiting for it: with Redis, it joins this process's
    outbox, which sends in the order given (a failure is logged, as ``send_now`` does). The
    caller, an ASGI process's one database thread, goes on at once: a customer message's
    analysis is queued without waiting for its two broadcasts, and the next store starts
    sooner. Other layers (in-memory: their queues belong to the server's own loop), and
    processes that set ``inline_sends``, send at once.

    ``sender_channel``: the channel name of a socket that already has the event (it echoed its
    own message). When that socket is the group's only member, the outbox does not send: one
    look at the group instead of a send and a receive that socket would drop as already seen.
    With other members the event goes to all of them, that socket included, as before."""
    layer = get_channel_layer()
    if inline_sends or not isinstance(layer, RedisChannelLayer):
        send_now(group, event)
        return
    loop = _sender_loop()
    loop.call_soon_threadsafe(_enqueue, _outbox, layer, group, event, sender_channel)


def _enqueue(
    outbox: asyncio.Queue, layer, group: str, event: dict, sender_channel: str | None = None
) -> None:
    try:
        outbox.put_nowait((layer, group, event, sender_channel))
    except asyncio.QueueFull:
        logger.warning("realtime outbox full; %s not pushed to %s", event["type"], group)


async def _only_member(layer: RedisChannelLayer, group: str, channel: str) -> bool:
    """Whether no one but ``channel`` is in the group: the members ``group_send`` itself would
    read first (one ``ZRANGE``). A member that joins after this look replays from the database
    after joining, as it would after a ``group_send`` that read the group before it joined."""
    connection = layer.connection(layer.consistent_hash(group))
    members = await connection.zrange(layer._group_key(group), 0, -1)
    return all(member.decode("utf8") == channel for member in members)


async def _send_to_group(layer, group: str, event: dict, sender_channel: str | None) -> None:
    if sender_channel is not None and await _only_member(layer, group, sender_channel):
        return
    await layer.group_send(group, event)


async def _send_outbox(outbox: asyncio.Queue) -> None:
    while True:
        layer, group, event, sender_channel = await outbox.get()
        try:
            for attempt in (1, 2):  # once more: a pooled connection fails once after a restart
                try:
                    await asyncio.wait_for(
                        _send_to_group(layer, group, event, sender_channel), SEND_TIMEOUT_SECONDS
                    )
                    break
                except Exception:
                    if attempt == 2:
                        logger.warning(
                            "channel layer unavailable; %s not pushed to %s", event["type"], group
                        )
        finally:
            outbox.task_done()


def flush_sends(timeout: float = SEND_TIMEOUT_SECONDS) -> None:
    """Wait (at most ``timeout`` seconds) until this process's outbox is sent: before a
    process exits, so that its last after-commit events still go out."""
    with _loop_lock:
        loop, outbox = _loop, _outbox
        if loop is None or loop.is_closed() or _loop_pid != os.getpid():
            return
    try:
        asyncio.run_coroutine_threadsafe(outbox.join(), loop).result(timeout=timeout)
    except Exception:
        logger.warning("realtime outbox not sent within %.0f s at exit", timeout)


atexit.register(flush_sends)


def publish_on_commit(group: str, event: dict) -> None:
    transaction.on_commit(lambda: send_soon(group, event))


def customer_message_payload(message) -> dict:
    """What a customer may see of a message: no AI confidence, no staff-only flags."""
    from .models import agent_name

    return {
        "id": message.id,
        "conversation": message.conversation_id,
        "sender": message.sender,
        "author_name": agent_name(message.author) if message.author_id else "",
        "text": message.text,
        "created_at": message.created_at.isoformat(),
    }


def message_payload(message) -> dict:
    """What staff see of a message."""
    return {
        **customer_message_payload(message),
        "is_private_note": message.is_private_note,
        "confidence": message.confidence,
    }


@dataclass(frozen=True)
class Echo:
    """The customer socket a message came from, which sends the message back itself:
    ``channel`` is its channel name, ``committed`` is called (on the storing thread) when the
    message commits, where the customers' copy would have been sent to it."""

    channel: str
    committed: Callable[[], None]


def publish_message(message, *, echoed_to: Echo | None = None) -> None:
    """``echoed_to``: the customer socket the message came from; the customers' copy is not
    sent when that socket is the conversation's only one (``send_soon``)."""
    if not message.is_private_note:
        group = conversation_group(message.conversation_id)
        event = {"type": "message.created", "message": customer_message_payload(message)}
        if echoed_to is None:
            publish_on_commit(group, event)
        else:

            def send_to_customers():
                try:
                    echoed_to.committed()
                except Exception:  # the socket's loop is gone (shutdown): send to every socket
                    logger.warning("socket not told of its commit; %s sent to all", group)
                    send_soon(group, event)
                    return
                send_soon(group, event, sender_channel=echoed_to.channel)

            transaction.on_commit(send_to_customers)
    publish_on_commit(
        staff_conversation_group(message.conversation_id),
        {"type": "message.created", "message": message_payload(message)},
    )


def mode_event(
    conversation,
    *,
    agent_display_name: str = "",
    resolved: bool = False,
    language: str | None = None,
) -> dict:
    """``resolved``: the agent resolved the escalation but still holds the chat; for the
    customer it has ended. ``status``: while an agent holds the chat, the widget's status line
    in the customer's ``language`` ("Sie sprechen jetzt mit Marina", or the resolved line);
    empty otherwise (the widget says "Our assistant" / "Waiting…" itself)."""
    from . import customer_texts

    status = ""
    if conversation.mode == conversation.Mode.AGENT:
        kind = "resolved_status" if resolved else "takeover"
        status = customer_texts.render(kind, language, agent_name=agent_display_name)
    return {
        "type": "conversation.mode",
        "conversation": conversation.id,
        "mode": conversation.mode,
        "agent_name": agent_display_name,
        "resolved": resolved,
        "status": status,
    }


def publish_mode(
    conversation,
    *,
    agent_display_name: str = "",
    resolved: bool = False,
    language: str | None = None,
) -> None:
    event = mode_event(
        conversation,
        agent_display_name=agent_display_name,
        resolved=resolved,
        language=language,
    )
    publish_on_commit(conversation_group(conversation.id), event)
    publish_on_commit(staff_conversation_group(conversation.id), event)


def publish_queue_event(kind: str, escalation_id: int, **extra) -> None:
    """``kind``: added, updated, claimed, removed. Agents re-read the row they are shown."""
    event = {"type": f"queue.{kind}", "escalation": escalation_id, **extra}
    publish_on_commit(QUEUE_GROUP, event)
    from .hooks import queue_changed

    queue_changed.announce(kind=kind, escalation_id=escalation_id)


def publish_to_agent(user_id: int, event: dict) -> None:
    publish_on_commit(agent_group(user_id), event)
