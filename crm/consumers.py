"""WebSocket consumers: the customer's widget socket and the agent's socket.

Thin edges (see ARCHITECTURE.md, "Live chat"): authenticate, join the groups named in
``crm.realtime``, validate each incoming JSON frame, call a service through
``database_sync_to_async`` and map ``DomainError`` to an ``error`` frame. Server→client frames
are the group events of ``crm.realtime`` forwarded as they are, plus ``error`` and
``connection.state``.

The database is the truth and the socket a notification: on connect (and on ``subscribe``) the
messages after ``after`` are replayed from the database; a stored message is echoed to its sender
directly, so a sender sees its message even while the channel layer is down. When the layer
(Redis) fails, the socket stays open, says ``connection.state: degraded``, keeps storing what it
receives, and retries the layer every few seconds, pushing from the database meanwhile; when the
layer answers again the groups are re-joined and ``connection.state: live`` is sent.
"""

import asyncio
import hashlib
import json
import logging
import random
import re
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module
from urllib.parse import parse_qs, urlparse

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.db import connections
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _

from . import limits, logcontext, metrics, realtime, selectors
from . import services as crm_services
from .errors import DomainError
from .models import Conversation, Message, agent_name

logger = logging.getLogger(__name__)

# Refusals: the socket is accepted, then closed with one of these codes, so the browser sees
# it in CloseEvent.code (a close before accepting is an HTTP 403 at the handshake under uvicorn).
CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_LOGGED_IN = 4401  # also: the session ended (logged out, deleted, password changed)
CLOSE_FORBIDDEN = 4403  # also: the user was deactivated or is no longer staff
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_MANY_SOCKETS = 4429  # try again later, with back-off

LAYER_TIMEOUT_SECONDS = 2.0  # a layer call slower than this counts as the layer being down
LAYER_RETRY_SECONDS = 5.0  # while degraded: retry the layer and push from the database
RATE_WINDOW_SECONDS = 10.0
TYPING_MIN_INTERVAL_SECONDS = 2.0
REPLAY_BATCH = 200
SEEN_IDS_KEPT = 2000
# A customer token checked in the database is trusted for this long by this process's other
# sockets (see TokenChecks).
TOKEN_CHECK_CACHE_SECONDS = 10.0
TOKEN_CHECKS_KEPT = 10_000
# "Alex is viewing": agents' sockets repeat their presence well within this; a tab that
# crashed (no "left") disappears from colleagues' screens when it runs out.
PRESENCE_TTL_SECONDS = 30
PRESENCE_STATES = ("viewing", "left")

CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


class InvalidClientId(DomainError):
    code = "invalid_client_id"


def parse_client_id(value) -> str | None:
    """The widget's own id for a message (absent, or 1-64 of ``[A-Za-z0-9_-]``)."""
    if value is None:
        return None
    if isinstance(value, str) and CLIENT_ID_PATTERN.fullmatch(value):
        return value
    raise InvalidClientId(_('"client_id" must be 1 to 64 characters: letters, digits, "-" or "_".'))


def client_id_of(frame: dict) -> dict:
    """``{"client_id": ...}`` when the frame carries a valid one, for refusals to name it."""
    value = frame.get("client_id")
    if isinstance(value, str) and CLIENT_ID_PATTERN.fullmatch(value):
        return {"client_id": value}
    return {}


def widget_provider_message_id(conversation_id: int, client_id: str) -> str:
    """The ``provider_message_id`` of a widget message: a resend of the same client id is
    stored once. Namespaced by conversation because the uniqueness is per channel, and one
    customer's id must never match (and echo back) another conversation's message."""
    return f"widget:{conversation_id}:{client_id}"


def max_frame_chars() -> int:
    """Longest text frame accepted: the message limit, JSON-escaped at worst, plus envelope."""
    return settings.LIVE_ESCALATION["MAX_MESSAGE_CHARS"] * 6 + 1024


def header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


AFTER_PATTERN = re.compile(r"[0-9]{1,18}")  # ASCII digits only; fits a bigint
MAX_AFTER = 10**18 - 1


def parse_after(value) -> int | None:
    """A message id cursor: a non-negative integer (a JSON number or a string of at most 18
    ASCII digits), or None when absent. ValueError for anything else: Unicode digits, floats
    (``1e400`` is infinity), negatives and numbers too large for the database."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        if 0 <= value <= MAX_AFTER:
            return value
        raise ValueError(value)
    if isinstance(value, str) and AFTER_PATTERN.fullmatch(value):
        return int(value)
    raise ValueError(value)


def as_id(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


class SeenIds:
    """Message ids already sent on this socket (bounded): replay and live events overlap."""

    def __init__(self, size: int = SEEN_IDS_KEPT):
        self._order = deque()
        self._ids = set()
        self._size = size

    def add(self, message_id: int) -> bool:
        """Remember an id; False when it was already there."""
        if message_id in self._ids:
            return False
        self._ids.add(message_id)
        self._order.append(message_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True


class RateLimit:
    """At most ``limit`` frames in any ``window`` seconds, per connection."""

    def __init__(self, limit: int, window: float = RATE_WINDOW_SECONDS):
        self.limit = limit
        self.window = window
        self._times = deque()

    def allow(self) -> bool:
        now = time.monotonic()
        while self._times and now - self._times[0] >= self.window:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


# --- database access (sync, run through database_sync_to_async) -------------------------------


def _messages_after(conversation_id: int, after: int, *, include_private: bool) -> list[dict]:
    """The next replay batch: staff see everything, customers their own view of messages."""
    if include_private:
        rows = selectors.staff_messages_after(conversation_id, after, REPLAY_BATCH)
        return [realtime.message_payload(message) for message in rows]
    rows = selectors.customer_messages_after(conversation_id, after, REPLAY_BATCH)
    return [realtime.customer_message_payload(message) for message in rows]


def _mode_event(conversation_id: int) -> dict | None:
    conversation = (
        Conversation.objects.select_related("assigned_agent__agent_profile")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None:
        return None
    from escalation.selectors import customer_view

    name = ""
    if conversation.mode == Conversation.Mode.AGENT and conversation.assigned_agent_id:
        name = agent_name(conversation.assigned_agent)
    resolved, language = customer_view(conversation)
    return realtime.mode_event(
        conversation, agent_display_name=name, resolved=resolved, language=language
    )


def _queue_position_frame(conversation_id: int) -> dict | None:
    """The waiting customer's place, estimate and sentence (the text is read from the
    database: the manager's wording in their language)."""
    from escalation.selectors import queue_place
    from escalation.services import queue_position_event

    place = queue_place(conversation_id)
    return queue_position_event(place) if place is not None else None


@database_sync_to_async
def conversation_for_token(conversation_id: int, token: str) -> Conversation | None:
    return selectors.conversation_for_customer_token(conversation_id, token)


class TokenChecks:
    """This process checks a conversation's customer token in the database once for all the
    sockets that present it within TOKEN_CHECK_CACHE_SECONDS, and once for a burst presenting
    it at the same moment (they await the same pending check): a flood of one conversation's
    sockets costs the one database thread one query, not one per socket. Wrong tokens are
    remembered as wrong as well. A token never changes; a change to a channel's allowed origins
    reaches new sockets within TOKEN_CHECK_CACHE_SECONDS. A failed check is not kept."""

    def __init__(self):
        self.checks: dict[tuple[int, str], tuple[float, asyncio.Future]] = {}

    async def conversation(self, conversation_id: int, token: str) -> Conversation | None:
        digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        key = (conversation_id, digest)
        now = time.monotonic()
        loop = asyncio.get_running_loop()
        entry = self.checks.get(key)
        if entry is None or not self.usable(entry, now, loop):
            self.forget_expired(now)
            check = loop.create_task(conversation_for_token(conversation_id, token))
            entry = self.checks[key] = (now + TOKEN_CHECK_CACHE_SECONDS, check)
        return await asyncio.shield(entry[1])  # a socket that goes away leaves it to the others

    @staticmethod
    def usable(entry, now: float, loop) -> bool:
        expires, check = entry
        if expires < now or check.get_loop() is not loop:
            return False
        return not (check.done() and (check.cancelled() or check.exception() is not None))

    def forget_expired(self, now: float) -> None:
        if len(self.checks) < TOKEN_CHECKS_KEPT:
            return
        self.checks = {key: entry for key, entry in self.checks.items() if entry[0] >= now}
        if len(self.checks) >= TOKEN_CHECKS_KEPT:  # a flood of distinct tokens: start afresh
            self.checks = {}

    def clear(self) -> None:
        self.checks = {}


token_checks = TokenChecks()


# Customer messages are stored on a pool of their own, not on the process's one database
# thread (where Channels runs every other ``database_sync_to_async`` call): each store is a few
# round trips to PostgreSQL, and one thread spent most of its time waiting for them while the
# other conversations' stores queued behind it. Each pool thread keeps its own connection
# (CONN_MAX_AGE and the health check apply per call, as on the database thread), so a process's
# sockets hold at most STORE_THREADS + 1 connections. One conversation's frames reach the pool
# one at a time, in arrival order (``limits.conversation_turns``).
store_threads = ThreadPoolExecutor(
    max_workers=settings.LIVE_ESCALATION["STORE_THREADS"], thread_name_prefix="message-store"
)


def _store_customer_message(
    conversation: Conversation,
    text,
    client_id: str | None = None,
    echo: realtime.Echo | None = None,
) -> dict:
    """``conversation`` as read when the socket connected: the service re-reads it under a row
    lock, and reads only its id and channel (which never change) before that. ``echo``: the
    sending socket, which echoes the message itself."""
    provider_message_id = None
    if client_id is not None:
        provider_message_id = widget_provider_message_id(conversation.pk, client_id)
    message = crm_services.receive_customer_message(
        conversation=conversation,
        text=text,
        provider_message_id=provider_message_id,
        echoed_to=echo,
    )
    return realtime.customer_message_payload(message)


store_customer_message = database_sync_to_async(
    _store_customer_message, thread_sensitive=False, executor=store_threads
)


def close_store_connections() -> None:
    """Close every store thread's database connection (tests, before the database is flushed):
    one call per thread, each held until all have started, so that no thread takes two."""
    size = store_threads._max_workers
    together = threading.Barrier(size)

    def close_mine():
        connections.close_all()
        together.wait(timeout=10)

    for future in [store_threads.submit(close_mine) for _thread in range(size)]:
        future.result(timeout=10)


@database_sync_to_async
def store_rating(conversation_id: int, escalation_id, score, comment) -> None:
    from escalation.satisfaction import rate_escalation

    rate_escalation(
        conversation_id=conversation_id,
        escalation_id=escalation_id,
        score=score,
        comment=comment,
    )


@database_sync_to_async
def store_agent_message(conversation_id: int, agent, text, private: bool) -> dict:
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        raise DomainError(_("No conversation %(id)s.") % {"id": conversation_id})
    message = crm_services.send_agent_message(
        conversation=conversation, agent=agent, text=text, private_note=private
    )
    return realtime.message_payload(message)


@database_sync_to_async
def agent_may_type_to_customer(conversation_id: int, user_id: int) -> bool:
    return Conversation.objects.filter(
        pk=conversation_id, mode=Conversation.Mode.AGENT, assigned_agent_id=user_id
    ).exists()


@database_sync_to_async
def conversation_exists(conversation_id: int) -> bool:
    return Conversation.objects.filter(pk=conversation_id).exists()


@database_sync_to_async
def agent_access_lost(user_id: int, session_key: str | None) -> int | None:
    """None while the user is active staff and the socket's session is still theirs; otherwise
    the close code: 4403 (deactivated, no longer staff) or 4401 (session deleted, expired,
    logged out, or the password changed since, as Django's own session check)."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not (user.is_active and user.is_staff):
        return CLOSE_FORBIDDEN
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key).load()
    if session.get(SESSION_KEY) != str(user_id):
        return CLOSE_NOT_LOGGED_IN
    if not constant_time_compare(session.get(HASH_SESSION_KEY) or "", user.get_session_auth_hash()):
        return CLOSE_NOT_LOGGED_IN
    return None


def agent_origin_allowed(scope) -> bool:
    """The staff socket's Origin must be one of ALLOWED_HOSTS (Channels' own rule)."""
    raw = header(scope, b"origin")
    validator = OriginValidator(None, settings.ALLOWED_HOSTS)
    return validator.valid_origin(urlparse(raw) if raw else None)


class LiveConsumer(AsyncWebsocketConsumer):
    """What both sockets share: JSON frames, error frames, limits, groups that survive a
    channel layer outage, and de-duplicated message delivery."""

    include_private_notes = False
    socket_kind = "customer"  # the label of the open-sockets metric
    # Frames go through a queue handled by one task, so the socket keeps being read (and
    # answering pings) while a store is pending; None: frames are handled inline.
    queue_frames = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.joined: set[str] = set()
        self.degraded = False
        self.seen = SeenIds()
        self.last_message_id: dict[int, int] = {}
        self.rate = RateLimit(settings.LIVE_ESCALATION["SOCKET_RATE_LIMIT"])
        self.last_typing: dict[int, float] = {}
        self.accepted = False
        self.closed = False
        self._pending_receive = None
        self.frame_queue: asyncio.Queue | None = None
        self.frame_worker: asyncio.Task | None = None
        self.watchdog: asyncio.Task | None = None

    async def __call__(self, scope, receive, send):
        # Every log line of this socket carries its id (this task's own context).
        logcontext.request_id.set(logcontext.new_request_id("ws-"))
        logcontext.conversation_id.set(None)
        try:
            await super().__call__(scope, receive, send)
        finally:  # cancelled without a disconnect (server shutdown): no orphan task
            if self.frame_worker is not None and not self.frame_worker.done():
                self.frame_worker.cancel()
            if self.watchdog is not None and not self.watchdog.done():
                self.watchdog.cancel()
            if self.accepted:
                metrics.open_sockets.labels(self.socket_kind).dec()

    async def accept(self, subprotocol=None, headers=None):
        await super().accept(subprotocol, headers)
        self.accepted = True
        metrics.open_sockets.labels(self.socket_kind).inc()

    async def refuse(self, code: int, reason: str = "") -> None:
        """Accept, then close with ``code``: a close before accepting reaches the browser as an
        HTTP 403 at the handshake under uvicorn, and the client could not tell why."""
        await AsyncWebsocketConsumer.accept(self)  # not counted as an open socket
        await self.close(code=code, reason=reason[:120] or None)

    def start_watchdog(self) -> None:
        self.watchdog = asyncio.ensure_future(self.run_watchdog())

    async def run_watchdog(self) -> None:
        """Every few seconds (jittered): ``periodic_check`` while the socket is open."""
        interval = self.watchdog_interval()
        while not self.closed:
            await asyncio.sleep(interval * (0.8 + random.random() * 0.4))
            try:
                await self.periodic_check()
            except Exception:  # a failing check is retried next time; the socket stays
                logger.warning("socket periodic check failed", exc_info=True)

    def watchdog_interval(self) -> float:
        return settings.LIVE_ESCALATION["SOCKET_RECHECK_SECONDS"]

    async def periodic_check(self) -> None:
        """Overridden: what an open socket re-checks now and then."""

    async def dispatch(self, message):
        """As Channels' own, but without its ``aclose_old_connections()`` before each event:
        every database call here goes through ``database_sync_to_async``, which closes old
        connections itself. That hop runs on the one database thread of the process: on the
        customer socket every incoming frame and layer event would wait behind a pending store
        (and the socket would stop being read), and an agent socket paid a hop to that thread
        for every layer event, i.e. for each message of every conversation it watches."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message):
        """As Channels' own, but without its ``aclose_old_connections()`` when frames are queued
        (see ``dispatch``): for every socket that closed, a flood's refused ones too, that hop
        waited in front of other customers' stores on the one database thread."""
        if not self.queue_frames:
            return await super().websocket_disconnect(message)
        await self.disconnect(message["code"])
        raise StopConsumer()

    def start_frame_worker(self) -> None:
        if self.queue_frames and self.frame_worker is None:
            self.frame_queue = asyncio.Queue()
            self.frame_worker = asyncio.ensure_future(self.run_frames())

    async def run_frames(self) -> None:
        """Handle queued frames one at a time, in arrival order; ``None`` ends the task."""
        while True:
            item = await self.frame_queue.get()
            if item is None:
                return
            try:
                await self.handle_frame(item)
            except Exception:  # handle_frame answers errors itself; never let the task die
                logger.exception("socket frame handling failed")
            finally:
                self.frames_done()

    def backlog_full(self) -> bool:
        """Whether this socket's share of the database thread is used up (FRAME_QUEUE_MAX)."""
        return self.frame_queue.qsize() >= settings.LIVE_ESCALATION["FRAME_QUEUE_MAX"]

    def frame_queued(self) -> None:
        pass

    def frames_done(self) -> None:
        pass

    # The base consumer reads channel-layer events through ``self.channel_receive``; a failing
    # layer would raise out of its dispatch loop and kill the socket. Wrap it so a failure
    # becomes an ordinary event (``layer.failed`` / ``layer.retry``) handled below.
    @property
    def channel_receive(self):
        return self._resilient_channel_receive

    @channel_receive.setter
    def channel_receive(self, layer_receive):
        self._layer_receive = layer_receive

    async def _resilient_channel_receive(self):
        """The next layer event; ``layer.retry`` every few seconds while degraded (whether the
        pending receive is blocked or failing); ``layer.failed`` when the receive fails twice.
        One receive stays pending across calls, so no event is dropped by a timeout."""
        failures = 0
        while True:
            if self._pending_receive is None:
                self._pending_receive = asyncio.ensure_future(self._layer_receive())
            tick = LAYER_RETRY_SECONDS * (0.75 + random.random() / 2)
            done, _ = await asyncio.wait({self._pending_receive}, timeout=tick)
            if not done:
                if self.degraded:
                    return {"type": "layer.retry"}
                continue
            finished, self._pending_receive = self._pending_receive, None
            try:
                return finished.result()
            except Exception:
                failures += 1
                if failures < 2:  # a connection broken by a past outage fails once, then works
                    await asyncio.sleep(0.1)
                    continue
                logger.warning("channel layer receive failed on %s", self.channel_name)
                if self.degraded:
                    await asyncio.sleep(tick)
                    return {"type": "layer.retry"}
                await asyncio.sleep(0.1)  # never spin if the layer fails instantly
                return {"type": "layer.failed"}

    # --- groups ----------------------------------------------------------------------------

    async def join(self, group: str) -> bool:
        self.joined.add(group)
        if self.degraded:
            return False
        try:
            await asyncio.wait_for(
                self.channel_layer.group_add(group, self.channel_name), LAYER_TIMEOUT_SECONDS
            )
        except Exception:
            logger.warning("channel layer group_add(%s) failed", group)
            await self.become_degraded()
            return False
        return True

    async def leave(self, group: str) -> None:
        self.joined.discard(group)  # even if the layer fails now, a recovery will not re-join
        try:
            await asyncio.wait_for(
                self.channel_layer.group_discard(group, self.channel_name), LAYER_TIMEOUT_SECONDS
            )
        except Exception:
            logger.warning("channel layer group_discard(%s) failed", group)

    async def publish(self, group: str, event: dict) -> None:
        """Ephemeral events (typing) that are not stored; lost when the layer is down."""
        if self.degraded:
            return
        try:
            await asyncio.wait_for(
                self.channel_layer.group_send(group, event), LAYER_TIMEOUT_SECONDS
            )
        except Exception:
            logger.warning("channel layer group_send(%s) failed", group)
            await self.become_degraded()

    async def become_degraded(self) -> None:
        if self.degraded:
            return
        self.degraded = True
        if self.accepted:
            await self.send_frame({"type": "connection.state", "state": "degraded"})

    async def layer_failed(self, event) -> None:
        await self.become_degraded()

    async def layer_retry(self, event) -> None:
        """While degraded: try to re-join every group; push what the database has meanwhile."""
        try:
            for group in list(self.joined):
                await asyncio.wait_for(
                    self.channel_layer.group_add(group, self.channel_name), LAYER_TIMEOUT_SECONDS
                )
        except Exception:
            await self.catch_up()
            return
        self.degraded = False
        await self.send_frame({"type": "connection.state", "state": "live"})
        await self.catch_up()

    async def catch_up(self) -> None:
        for conversation_id, after in list(self.last_message_id.items()):
            await self.replay(conversation_id, after)

    async def disconnect(self, code):
        self.closed = True
        if self._pending_receive is not None:
            self._pending_receive.cancel()
        if self.watchdog is not None:
            self.watchdog.cancel()
        for group in list(self.joined):
            await self.leave(group)
        if self.frame_worker is not None:
            # Frames the socket already took are still handled (stored), only not answered:
            # a client that sent and went away loses nothing that reached the server.
            self.frame_queue.put_nowait(None)
            await self.frame_worker

    # --- frames ----------------------------------------------------------------------------

    async def send_frame(self, frame: dict) -> None:
        if self.closed:
            return  # a queued frame handled after the socket closed: stored, not answered
        try:
            await self.send(text_data=json.dumps(frame))
        except Exception:  # the client went away before its disconnect reached us
            if not self.queue_frames:
                raise
            logger.info("socket %s gone; frames are no longer sent", self.channel_name)
            self.closed = True

    async def send_error(self, code: str, message: str, **extra) -> None:
        await self.send_frame({"type": "error", "code": code, "message": message, **extra})

    async def send_message_frame(self, message: dict, client_id: str | None = None) -> None:
        """A message, at most once per socket; but the answer to a frame that carried a
        ``client_id`` is always sent, with that id (the sender's acknowledgement)."""
        if message.get("is_private_note") and not self.include_private_notes:
            return
        conversation_id = message["conversation"]
        if message["id"] > self.last_message_id.get(conversation_id, message["id"]):
            self.last_message_id[conversation_id] = message["id"]  # the catch-up cursor
        new = self.seen.add(message["id"])
        if client_id is not None:
            await self.send_frame(
                {"type": "message.created", "message": message, "client_id": client_id}
            )
        elif new:
            await self.send_frame({"type": "message.created", "message": message})

    async def replay(self, conversation_id: int, after: int) -> None:
        """Every message after ``after``, in order, from the database."""
        self.last_message_id.setdefault(conversation_id, after)
        while True:
            batch = await database_sync_to_async(_messages_after)(
                conversation_id, after, include_private=self.include_private_notes
            )
            for message in batch:
                await self.send_message_frame(message)
            if len(batch) < REPLAY_BATCH:
                return
            after = batch[-1]["id"]

    async def send_mode(self, conversation_id: int) -> None:
        event = await database_sync_to_async(_mode_event)(conversation_id)
        if event is not None:
            await self.send_frame(event)

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            await self.send_error("unsupported_frame", _("Send JSON text frames."))
            return
        if not await self.admit(text_data):
            return
        frame = await self.parse_frame(text_data)
        if frame is None or not await self.admit_frame(frame):
            return
        if self.frame_queue is None:
            await self.handle_frame(frame)
        elif self.backlog_full():
            await self.send_error(
                "busy",
                _("Too many frames are waiting; please send again in a moment."),
                **client_id_of(frame),
            )
        else:
            self.frame_queued()
            self.frame_queue.put_nowait(frame)

    async def admit_frame(self, frame: dict) -> bool:
        """Overridden: checks on a parsed frame before it is queued (budgets)."""
        return True

    async def admit(self, text_data: str) -> bool:
        """The checks made as a frame arrives (cheap, and they bound what is queued)."""
        if len(text_data) > max_frame_chars():
            await self.send_error(
                "frame_too_large",
                _("Frame too large: the limit is %(limit)d characters.")
                % {"limit": max_frame_chars()},
            )
            return False
        if not self.rate.allow():
            await self.send_error(
                "rate_limited",
                _("Too many frames: at most %(limit)d every %(seconds)d seconds.")
                % {"limit": self.rate.limit, "seconds": int(self.rate.window)},
            )
            return False
        return True

    async def parse_frame(self, text_data: str) -> dict | None:
        """The frame as a JSON object with a ``type``, or None after an error frame."""
        try:
            frame = limits.load_client_json(text_data)
        except limits.JsonTooDeep as error:
            await self.send_error(
                "too_deep",
                _("The frame nests deeper than %(limit)d levels.") % {"limit": error.limit},
            )
            return None
        except (ValueError, RecursionError):
            await self.send_error("bad_json", _("The frame is not valid JSON."))
            return None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.send_error("bad_frame", _('A frame is a JSON object with a "type".'))
            return None
        return frame

    async def handle_frame(self, frame: dict) -> None:
        if not await self.may_still_act():
            return
        handler = self.client_handlers().get(frame["type"])
        if handler is None:
            await self.send_error(
                "unknown_type", _("Unknown frame type %(type)r.") % {"type": frame["type"][:50]}
            )
            return
        try:
            await handler(frame)
        except DomainError as error:
            await self.send_error(error.code, error.message)
        except Exception:
            logger.exception("socket frame %r failed", frame["type"])
            await self.send_error("server_error", _("Something went wrong; please try again."))

    def client_handlers(self) -> dict:
        raise NotImplementedError

    async def may_still_act(self) -> bool:
        """Overridden: re-checked before every frame is handled; False closes the socket."""
        return True

    def typing_too_soon(self, conversation_id: int) -> bool:
        now = time.monotonic()
        if now - self.last_typing.get(conversation_id, 0.0) < TYPING_MIN_INTERVAL_SECONDS:
            return True
        self.last_typing[conversation_id] = now
        return False

    # --- group events forwarded as they are --------------------------------------------------

    async def message_created(self, event):
        await self.send_message_frame(event["message"])

    async def conversation_mode(self, event):
        await self.send_frame(event)

    async def rating_recorded(self, event):
        await self.send_frame(event)

    async def typing(self, event):
        if event.get("origin") == self.channel_name:
            return  # one's own typing
        await self.send_frame(
            {
                "type": "typing",
                "conversation": event["conversation"],
                "sender": event["sender"],
                "name": event.get("name", ""),
                # staff tell their own typing apart; customers never see staff ids
                **(
                    {"user_id": event["user_id"]}
                    if self.include_private_notes and "user_id" in event
                    else {}
                ),
            }
        )


class RefuseWhenFull:
    """In front of the customer socket (``config/routing.py``): a socket to a conversation, or
    from an address, whose sockets are already at the cap is accepted and closed with 4429 here,
    for one look in Redis, before a consumer, its channel-layer name and its database work are
    made for it; a flood of one conversation costs little more than its handshakes. The caps
    themselves are kept by the consumer's atomic take."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        full = await limits.full_scope(
            conversation_id=scope["url_route"]["kwargs"]["conversation_id"],
            address=limits.scope_client_address(scope),
        )
        if full is None:
            return await self.app(scope, receive, send)
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        await send(
            {
                "type": "websocket.close",
                "code": CLOSE_TOO_MANY_SOCKETS,
                "reason": f"too many sockets per {full}",
            }
        )


class CustomerConsumer(LiveConsumer):
    """``/ws/conversations/<id>/?token=<customer token>[&after=<message id>]``."""

    queue_frames = True
    # Frames waiting for the database, per conversation, over all sockets of this process: one
    # conversation's backlog never queues more than FRAME_QUEUE_MAX; past it, frames are
    # refused with a "busy" error frame (naming their client id).
    pending_by_conversation: Counter = Counter()
    slots: limits.SocketSlots | None = None
    # Layer events held while this socket's own message is stored, until its echo is sent
    # (None: not holding). See ``dispatch``.
    held: list | None = None

    async def connect(self):
        from .widget import origin_allowed

        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        params = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        token = params.get("token", [""])[0]
        try:
            after = parse_after(params.get("after", [None])[0])
        except ValueError:
            await self.refuse(CLOSE_BAD_REQUEST, "bad after")
            return
        self.address = limits.scope_client_address(self.scope)
        self.slots = limits.SocketSlots(address=self.address, member=self.channel_name)
        refusal = await self.slots.take_address(conversation_id)  # before any database work
        if refusal is not None:
            await self.refuse(CLOSE_TOO_MANY_SOCKETS, f"too many sockets per {refusal.scope}")
            return
        conversation = await token_checks.conversation(conversation_id, token)
        if conversation is None:
            await self.refuse(CLOSE_FORBIDDEN, "forbidden")
            return
        if not origin_allowed(header(self.scope, b"origin"), conversation.channel):
            await self.refuse(CLOSE_FORBIDDEN, "origin not allowed")
            return
        self.conversation = conversation
        self.conversation_id = conversation.id
        logcontext.bind_conversation(conversation.id)
        self.customer_name = str(conversation.contact)
        if await self.slots.take_conversation(conversation.id) is not None:
            await self.refuse(CLOSE_TOO_MANY_SOCKETS, "too many sockets per conversation")
            return
        await self.accept()
        self.start_frame_worker()
        self.start_watchdog()
        await self.join(realtime.conversation_group(self.conversation_id))
        await self.send_frame(
            {"type": "connection.state", "state": "degraded" if self.degraded else "live"}
        )
        await self.replay(self.conversation_id, after or 0)
        await self.send_mode(self.conversation_id)
        await self.send_queue_position()
        await self.send_rating_request()

    async def refuse(self, code: int, reason: str = "") -> None:
        if self.slots is not None:
            await self.slots.release()  # at once, not when the close has gone round
        await super().refuse(code, reason)

    async def disconnect(self, code):
        await super().disconnect(code)
        if self.slots is not None:
            await self.slots.release()

    def watchdog_interval(self) -> float:
        return limits.SLOT_HEARTBEAT_SECONDS  # the slots' heartbeat: well within their expiry

    async def periodic_check(self) -> None:
        if not await self.slots.refresh():  # this process stalled and the slot went to another
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)

    def backlog_full(self) -> bool:
        waiting = self.pending_by_conversation[self.conversation_id]
        return waiting >= settings.LIVE_ESCALATION["FRAME_QUEUE_MAX"]

    async def handle_frame(self, frame: dict) -> None:
        # One frame of a conversation at a time goes to the database thread, whatever the
        # number of its sockets: behind a flooded conversation another waits for one store.
        async with limits.conversation_turns.turn(self.conversation_id):
            await super().handle_frame(frame)

    def frame_queued(self) -> None:
        self.pending_by_conversation[self.conversation_id] += 1

    def frames_done(self) -> None:
        pending = self.pending_by_conversation
        pending[self.conversation_id] -= 1
        if pending[self.conversation_id] <= 0:
            del pending[self.conversation_id]

    async def admit_frame(self, frame: dict) -> bool:
        """A message spends its conversation's and its address's budget before it is queued."""
        if frame["type"] != "message":
            return True
        refusal = await limits.spend_message_budget(
            conversation_id=self.conversation_id, address=self.address
        )
        if refusal is None:
            return True
        if refusal.code == "busy":
            await self.send_error(
                "busy",
                _("Too many frames are waiting; please send again in a moment."),
                **client_id_of(frame),
            )
            return False
        await self.send_error(
            "rate_limited",
            _("Too many messages: at most %(limit)d a minute per %(scope)s. Please wait a moment.")
            % {"limit": refusal.limit, "scope": refusal.scope_label()},
            **client_id_of(frame),
        )
        return False

    def client_handlers(self) -> dict:
        return {"message": self.on_message, "typing": self.on_typing, "rating": self.on_rating}

    async def dispatch(self, message):
        """From the commit of this socket's own message until its echo, the layer's events wait
        (``held``). The layer no longer brings a lone socket's message back to it (it echoes it
        itself), so without this an answer to the message (the assistant's reply, a handoff)
        could reach the socket before the message it answers; events before the commit (a
        store waiting on a lock) go out as they come."""
        if self.held is not None and not message["type"].startswith("websocket."):
            self.held.append(message)
            return
        await super().dispatch(message)

    def hold_layer_events(self) -> None:
        if self.held is None:
            self.held = []

    async def release_held(self) -> None:
        """The held events, in arrival order (and those that arrive meanwhile), then stop
        holding."""
        try:
            while self.held:
                try:
                    await super().dispatch(self.held.pop(0))
                except Exception:
                    logger.exception("socket layer event failed")
        finally:
            self.held = None

    async def on_rating(self, frame):
        """``{"type": "rating", "escalation": <id>, "score": 1..5, "comment"?: text}``: the
        customer rates the end of a conversation; refusals are error frames (invalid_rating,
        escalation_not_found, rating_not_requested, already_rated)."""
        await store_rating(
            self.conversation_id, frame.get("escalation"), frame.get("score"), frame.get("comment")
        )
        # The rating.recorded frame reaches every socket of the conversation after commit.

    async def send_rating_request(self) -> None:
        """An ended conversation not rated yet: the prompt again (a reload, a reconnect)."""
        from escalation.satisfaction import pending_rating_request

        event = await database_sync_to_async(pending_rating_request)(self.conversation_id)
        if event is not None:
            await self.send_frame(event)

    async def rating_requested(self, event):
        await self.send_frame(event)

    async def on_message(self, frame):
        """Store the message and echo it. With a ``client_id`` the echo carries it (the
        widget's acknowledgement), so do refusals, and a resend of it is stored only once."""
        try:
            await self.store_and_echo(frame)
        finally:
            await self.release_held()

    async def store_and_echo(self, frame):
        client_id = parse_client_id(frame.get("client_id"))
        # This socket echoes the message below, so the conversation's broadcast skips it when
        # it is the conversation's only socket (the usual case): a send and a receive less.
        loop = asyncio.get_running_loop()
        echo = realtime.Echo(
            channel=self.channel_name,
            committed=lambda: loop.call_soon_threadsafe(self.hold_layer_events),
        )
        if client_id is None:
            message = await store_customer_message(self.conversation, frame.get("text"), echo=echo)
            await self.send_message_frame(message)
            return
        try:
            message = await store_customer_message(
                self.conversation, frame.get("text"), client_id, echo=echo
            )
        except DomainError as error:
            await self.send_error(error.code, error.message, client_id=client_id)
            return
        except Exception:
            logger.exception("storing a widget message failed")
            await self.send_error(
                "server_error",
                _("Something went wrong; please try again."),
                client_id=client_id,
            )
            return
        await self.send_message_frame(message, client_id)

    async def on_typing(self, frame):
        if self.typing_too_soon(self.conversation_id):
            return
        await self.publish(
            realtime.staff_conversation_group(self.conversation_id),
            {
                "type": "typing",
                "conversation": self.conversation_id,
                "sender": "customer",
                "name": self.customer_name,
                "origin": self.channel_name,
            },
        )

    async def message_created(self, event):
        if event["message"]["conversation"] == self.conversation_id:
            await self.send_message_frame(event["message"])

    async def send_queue_position(self) -> None:
        """While waiting for an agent: the place in the queue and the estimate, at once."""
        event = await database_sync_to_async(_queue_position_frame)(self.conversation_id)
        if event is not None:
            await self.send_frame(event)

    async def queue_position(self, event):
        await self.send_frame(event)


class AgentConsumer(LiveConsumer):
    """``/ws/agent/``: logged-in staff only (session cookie, origin checked by the router)."""

    include_private_notes = True
    socket_kind = "agent"

    async def connect(self):
        if not agent_origin_allowed(self.scope):
            await self.refuse(CLOSE_FORBIDDEN, "origin not allowed")
            return
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_NOT_LOGGED_IN, "not logged in")
            return
        if not (user.is_active and user.is_staff):
            await self.refuse(CLOSE_FORBIDDEN, "staff only")
            return
        self.user = user
        self.session_key = self.scope["session"].session_key
        self.display_name = await database_sync_to_async(agent_name)(user)
        self.subscribed: set[int] = set()
        self.last_presence: dict[int, float] = {}
        await self.accept()
        await self.join(realtime.QUEUE_GROUP)
        await self.join(realtime.agent_group(user.pk))
        await self.send_frame(
            {"type": "connection.state", "state": "degraded" if self.degraded else "live"}
        )
        self.start_watchdog()

    async def may_still_act(self) -> bool:
        """Every frame, every few seconds and on an ``access.revoked`` event: a user who was
        deactivated, lost staff, changed password or lost the session is cut off."""
        if self.closed:
            return False
        code = await agent_access_lost(self.user.pk, self.session_key)
        if code is None:
            return True
        self.closed = True  # nothing more is sent to a socket being closed
        await self.close(code=code)
        return False

    async def periodic_check(self) -> None:
        await self.may_still_act()

    async def access_revoked(self, event) -> None:
        await self.may_still_act()

    def client_handlers(self) -> dict:
        return {
            "subscribe": self.on_subscribe,
            "unsubscribe": self.on_unsubscribe,
            "reply": self.on_reply,
            "typing": self.on_typing,
            "presence": self.on_presence,
        }

    def conversation_of(self, frame) -> int:
        conversation_id = as_id(frame.get("conversation"))
        if conversation_id is None:
            raise DomainError(_('"conversation" must be a conversation id.'))
        logcontext.bind_conversation(conversation_id)
        return conversation_id

    async def on_subscribe(self, frame):
        conversation_id = self.conversation_of(frame)
        try:
            after = parse_after(frame.get("after"))
        except (TypeError, ValueError, OverflowError):
            raise DomainError(
                _('"after" must be a message id: a whole number from 0 to %(max)d.')
                % {"max": MAX_AFTER}
            ) from None
        if not await conversation_exists(conversation_id):
            raise DomainError(_("No conversation %(id)s.") % {"id": conversation_id})
        self.subscribed.add(conversation_id)
        await self.join(realtime.staff_conversation_group(conversation_id))
        await self.announce_presence(conversation_id, "viewing")
        if after is not None:
            await self.replay(conversation_id, after)
        else:  # live from now on; a later catch-up starts from the newest message
            latest = await database_sync_to_async(
                lambda: (
                    Message.objects.filter(conversation_id=conversation_id)
                    .order_by("-id")
                    .values_list("id", flat=True)
                    .first()
                )
            )()
            self.last_message_id.setdefault(conversation_id, latest or 0)

    async def on_unsubscribe(self, frame):
        conversation_id = self.conversation_of(frame)
        if conversation_id in self.subscribed:
            await self.announce_presence(conversation_id, "left")
        self.subscribed.discard(conversation_id)
        self.last_message_id.pop(conversation_id, None)
        await self.leave(realtime.staff_conversation_group(conversation_id))

    async def on_presence(self, frame):
        """``{"type": "presence", "conversation", "state": "viewing" | "left"}``: the page
        repeats "viewing" while it is open; colleagues on the conversation are told."""
        conversation_id = self.conversation_of(frame)
        state = frame.get("state")
        if state not in PRESENCE_STATES:
            raise DomainError(_('"state" must be "viewing" or "left".'))
        if conversation_id not in self.subscribed:
            raise DomainError(_("Subscribe to the conversation first."))
        now = time.monotonic()
        if state == "viewing" and now - self.last_presence.get(conversation_id, 0.0) < 2.0:
            return  # at most one "viewing" per 2 s per conversation
        self.last_presence[conversation_id] = now
        await self.announce_presence(conversation_id, state)

    async def announce_presence(self, conversation_id: int, state: str) -> None:
        await self.publish(
            realtime.staff_conversation_group(conversation_id),
            {
                "type": "presence",
                "conversation": conversation_id,
                "user_id": self.user.pk,
                "name": self.display_name,
                "state": state,
                "ttl": PRESENCE_TTL_SECONDS,
                "origin": self.channel_name,
            },
        )

    async def presence(self, event):
        if event.get("origin") == self.channel_name:
            return  # one's own
        await self.send_frame({k: v for k, v in event.items() if k != "origin"})

    async def disconnect(self, code):
        for conversation_id in list(getattr(self, "subscribed", ())):
            await self.announce_presence(conversation_id, "left")
        await super().disconnect(code)

    async def on_reply(self, frame):
        conversation_id = self.conversation_of(frame)
        private = frame.get("private", False)
        if not isinstance(private, bool):
            raise DomainError(_('"private" must be true or false.'))
        message = await store_agent_message(conversation_id, self.user, frame.get("text"), private)
        await self.send_message_frame(message)

    async def on_typing(self, frame):
        conversation_id = self.conversation_of(frame)
        if self.typing_too_soon(conversation_id):
            return
        event = {
            "type": "typing",
            "conversation": conversation_id,
            "sender": "agent",
            "name": self.display_name,
            "user_id": self.user.pk,
            "origin": self.channel_name,
        }
        await self.publish(realtime.staff_conversation_group(conversation_id), event)
        if await agent_may_type_to_customer(conversation_id, self.user.pk):
            await self.publish(realtime.conversation_group(conversation_id), event)

    async def message_created(self, event):
        if event["message"]["conversation"] in self.subscribed:  # not one just unsubscribed
            await self.send_message_frame(event["message"])

    async def queue_added(self, event):
        await self.send_frame(event)

    async def queue_updated(self, event):
        await self.send_frame(event)

    async def queue_claimed(self, event):
        await self.send_frame(event)

    async def queue_removed(self, event):
        await self.send_frame(event)

    async def notification_created(self, event):
        await self.send_frame(event)

    async def notification_updated(self, event):
        await self.send_frame(event)

    async def assignment_created(self, event):
        await self.send_frame(event)


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any other socket path: refused with 4404 instead of an error in the router."""

    async def connect(self):
        await self.accept()  # then close: the browser sees 4404, not a handshake 403
        await self.close(code=CLOSE_NOT_FOUND)
