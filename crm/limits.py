"""Fair use of the customer sockets, shared by every server process.

Two kinds of limit, counted in Redis (``REDIS_URL``) so that every process sees them:

- **socket slots**: how many sockets may be open at once to one conversation and from one
  client address. A slot is a member of a Redis sorted set scored by its expiry, taken by one
  Lua script (drop the expired, count, add only below the cap: atomic, so no interleaving of
  processes or coroutines lets a socket past the cap). Open sockets refresh theirs every
  ``SLOT_HEARTBEAT_SECONDS``, so a process that dies without closing frees its slots within
  ``SLOT_TTL_SECONDS``.
- **message budgets**: how many messages one conversation and one address may send per
  minute (fixed windows, ``INCR``).

Each process sends at most ``LIMITER_CONCURRENCY`` limiter calls to Redis at once (its
connections); the others wait for their turn. Two failures are told apart:

- Redis is **unreachable** (refused, or no answer within a second): the process counts on its
  own until Redis answers again, so every cap still holds per process (with N processes, up to
  N times the cap) and the chat keeps working, as in the degraded mode of ``crm.consumers``.
- The process is **overloaded** (a call waited ``LIMITER_WAIT_SECONDS`` for its turn): the
  socket or message is refused, to be retried later; never let through uncounted.

Without ``REDIS_URL`` (one process: ``make run``, tests on SQLite) the process counts on its own.
"""

import asyncio
import contextlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

KEY_PREFIX = "le:limits:"
BUDGET_WINDOW_SECONDS = 60
SLOT_TTL_SECONDS = 90  # a slot not refreshed for this long is free (its process died)
SLOT_HEARTBEAT_SECONDS = 30  # open sockets refresh their slots this often (jittered, +-20%)
LIMITER_CONCURRENCY = 16  # limiter calls in flight to Redis per process and event loop
LIMITER_WAIT_SECONDS = 5.0  # waiting longer than this for a turn is overload: refuse
REDIS_TIMEOUT_SECONDS = 1.0  # no answer within this counts as Redis unreachable
OUTAGE_LOG_INTERVAL_SECONDS = 30.0


def request_client_address(request) -> str | None:
    """The client's address as the ASGI server saw it (uvicorn applies ``X-Forwarded-For`` only
    from the proxies it trusts, ``--forwarded-allow-ips``); None when there is none."""
    return getattr(request, "META", {}).get("REMOTE_ADDR") or None


def scope_client_address(scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def _limits() -> dict:
    return settings.LIVE_ESCALATION


@dataclass(frozen=True)
class Refusal:
    code: str  # "too_many_sockets", "rate_limited", or "busy" (the limiter is overloaded)
    scope: str  # which limit: "conversation" or "address"
    limit: int

    def scope_label(self) -> str:
        return _("conversation") if self.scope == "conversation" else _("address")


class LimiterBusy(Exception):
    """This process waited too long for a turn to ask Redis: refuse rather than let through."""


# --- Redis ---------------------------------------------------------------------------------------

# KEYS[1]: the slots to take a slot in (a conversation's or an address's); ARGV: member, cap,
# ttl. Optionally KEYS[2], other slots that must not be full (ARGV[4], their cap): looked at,
# never taken. 1 when the member holds a slot in KEYS[1] afterwards (taken, or refreshed when it
# already held one); 0 when KEYS[1] is full; -1 when KEYS[2] is. Redis' own clock scores the
# expiries, so the processes' clocks need not agree.
TAKE_SLOT_SCRIPT = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
if KEYS[2] then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t)
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
    return -1
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
    and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], t + tonumber(ARGV[3]), ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

TAKEN, FULL, OTHER_FULL = 1, 0, -1

# KEYS: slot sets; ARGV: their caps. The 1-based index of the first set already full (its live
# slots, those not expired, at its cap), or 0. Looks only: nothing is taken or dropped.
FIRST_FULL_SCRIPT = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
for i, key in ipairs(KEYS) do
  if redis.call('ZCOUNT', key, '(' .. t, '+inf') >= tonumber(ARGV[i]) then
    return i
  end
end
return 0
"""


class _RedisLimiter:
    """One per event loop (a client's connections belong to its loop): the client, its slot
    script, and the gate that keeps this loop's calls within its connections."""

    def __init__(self, url: str):
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),  # one try: an outage is known at once, not in seconds
            # Never more calls than connections: redis-py raises "Too many connections" past
            # its pool's size (100 by default), which is how a 200-socket flood once got in.
            max_connections=LIMITER_CONCURRENCY,
        )
        self.gate = asyncio.Semaphore(LIMITER_CONCURRENCY)
        self.take_slot_script = self.client.register_script(TAKE_SLOT_SCRIPT)
        self.first_full_script = self.client.register_script(FIRST_FULL_SCRIPT)

    async def call(self, operation):
        """``await operation(self)`` when this loop's turn comes. LimiterBusy after waiting
        LIMITER_WAIT_SECONDS; Redis' own errors (unreachable) propagate."""
        try:
            async with asyncio.timeout(LIMITER_WAIT_SECONDS):
                await self.gate.acquire()
        except TimeoutError:
            raise LimiterBusy from None
        try:
            return await operation(self)
        finally:
            self.gate.release()

    async def take_slot(self, key: str, member: str, cap: int, unless_full=None) -> int:
        keys, args = [key], [member, cap, SLOT_TTL_SECONDS]
        if unless_full is not None:
            keys.append(unless_full[0])
            args.append(unless_full[1])
        return int(await self.take_slot_script(keys=keys, args=args))

    async def release_slot(self, key: str, member: str) -> None:
        await self.client.zrem(key, member)

    async def first_full(self, keys: list[str], caps: list[int]) -> int:
        return int(await self.first_full_script(keys=keys, args=caps))

    async def count(self, keys: list[str]) -> list[int]:
        """Add one to each counter, in one round trip; the new counts."""
        pipe = self.client.pipeline(transaction=True)
        for key in keys:
            pipe.incr(key)
            pipe.expire(key, BUDGET_WINDOW_SECONDS + 5)
        return (await pipe.execute())[::2]


_redis_limiters: dict = {}


def _redis_limiter() -> _RedisLimiter | None:
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    limiter = _redis_limiters.get(loop)
    if limiter is None:
        for stale in [other for other in _redis_limiters if other.is_closed()]:
            _redis_limiters.pop(stale, None)
        limiter = _redis_limiters[loop] = _RedisLimiter(settings.REDIS_URL)
    return limiter


def _unreachable(error: BaseException) -> bool:
    """Whether ``error`` means Redis cannot be reached now (then this process counts alone)."""
    import redis

    return isinstance(error, redis.ConnectionError | redis.TimeoutError | OSError | TimeoutError)


_last_outage_log = 0.0


def _log_outage(error: BaseException) -> None:
    global _last_outage_log
    now = time.monotonic()
    if now - _last_outage_log >= OUTAGE_LOG_INTERVAL_SECONDS:
        _last_outage_log = now
        logger.warning(
            "socket limits: Redis unreachable (%s); counting in this process meanwhile",
            type(error).__name__,
        )


# --- this process's own count (no Redis, or Redis unreachable) ------------------------------------


class _LocalLimiter:
    """Slots and budgets counted in this process. Slots have no expiry: they die with it.
    Every slot this process holds is noted here, also those taken in Redis (``note_slot``), so
    that while Redis is unreachable the count starts from this process's open sockets, not 0."""

    def __init__(self):
        self.lock = threading.Lock()  # tests run event loops in several threads
        self.slots: dict[str, set[str]] = {}
        self.counts: dict[str, int] = {}
        self.window = None

    def take_slot(self, key: str, member: str, cap: int, unless_full=None) -> int:
        with self.lock:
            if unless_full is not None:
                other_key, other_cap = unless_full
                if len(self.slots.get(other_key, ())) >= other_cap:
                    return OTHER_FULL
            held = self.slots.setdefault(key, set())
            if member in held or len(held) < cap:
                held.add(member)
                return TAKEN
            return FULL

    def note_slot(self, key: str, member: str) -> None:
        with self.lock:
            self.slots.setdefault(key, set()).add(member)

    def first_full(self, keys: list[str], caps: list[int]) -> int:
        with self.lock:
            for index, (key, cap) in enumerate(zip(keys, caps, strict=True), start=1):
                if len(self.slots.get(key, ())) >= cap:
                    return index
            return 0

    def release_slot(self, key: str, member: str) -> None:
        with self.lock:
            held = self.slots.get(key)
            if held is not None:
                held.discard(member)
                if not held:
                    del self.slots[key]

    def count(self, key: str, window: int) -> int:
        with self.lock:
            if window != self.window:  # keys carry their window: the old ones are done
                self.window, self.counts = window, {}
            self.counts[key] = self.counts.get(key, 0) + 1
            return self.counts[key]

    def clear(self) -> None:
        with self.lock:
            self.slots, self.counts, self.window = {}, {}, None


_local = _LocalLimiter()


# --- what the consumer calls ---------------------------------------------------------------------


def _conversation_key(conversation_id) -> str:
    return f"{KEY_PREFIX}sockets:conversation:{conversation_id}"


async def full_scope(*, conversation_id: int, address: str) -> str | None:
    """ "conversation" or "address" when its sockets are already at the cap, else None: a look,
    nothing taken, so a flood is refused before a consumer is even made for it. Only a hint
    (the slot is taken atomically later, by the socket that gets past this); None whenever the
    limiter cannot say at once."""
    scopes = {
        "conversation": (_conversation_key(conversation_id), _limits()["SOCKETS_PER_CONVERSATION"]),
        "address": (f"{KEY_PREFIX}sockets:address:{address}", _limits()["SOCKETS_PER_ADDRESS"]),
    }
    keys = [key for key, _cap in scopes.values()]
    caps = [cap for _key, cap in scopes.values()]
    limiter = _redis_limiter()
    try:
        if limiter is not None:
            index = await limiter.call(lambda r: r.first_full(keys, caps))
        else:
            index = _local.first_full(keys, caps)
    except Exception:  # busy or unreachable: the consumer's own take decides
        return None
    return list(scopes)[index - 1] if index else None


class SocketSlots:
    """The slots one customer socket holds: one for its address (taken first, before any
    database work, so a flood from one address costs the database nothing) and one for its
    conversation (taken once the token is checked, so nobody can fill another's conversation)."""

    def __init__(self, *, address: str, member: str):
        self.address = address
        self.member = member
        self.held: list[tuple[str, int]] = []  # (key, cap)

    async def take_address(self, conversation_id: int) -> Refusal | None:
        """The address's slot, unless the conversation is already full: a flood of one
        conversation is refused here, before its token is checked in the database (a full
        conversation refuses whoever asks; the slot itself is taken only with the token)."""
        conversation_cap = _limits()["SOCKETS_PER_CONVERSATION"]
        return await self._take(
            "address",
            f"{KEY_PREFIX}sockets:address:{self.address}",
            _limits()["SOCKETS_PER_ADDRESS"],
            unless_full=(_conversation_key(conversation_id), conversation_cap),
        )

    async def take_conversation(self, conversation_id: int) -> Refusal | None:
        cap = _limits()["SOCKETS_PER_CONVERSATION"]
        return await self._take("conversation", _conversation_key(conversation_id), cap)

    async def _take(self, which: str, key: str, cap: int, unless_full=None) -> Refusal | None:
        try:
            taken = await self._take_slot(key, cap, unless_full)
        except LimiterBusy:
            return Refusal(code="busy", scope=which, limit=cap)
        if taken == OTHER_FULL:
            return Refusal(code="too_many_sockets", scope="conversation", limit=unless_full[1])
        if taken == FULL:
            return Refusal(code="too_many_sockets", scope=which, limit=cap)
        self.held.append((key, cap))
        return None

    async def _take_slot(self, key: str, cap: int, unless_full=None) -> int:
        limiter = _redis_limiter()
        if limiter is not None:
            try:
                taken = await limiter.call(
                    lambda r: r.take_slot(key, self.member, cap, unless_full)
                )
            except LimiterBusy:
                raise
            except Exception as error:
                if not _unreachable(error):
                    raise
                _log_outage(error)
            else:
                if taken == TAKEN:  # also counted here, should Redis become unreachable
                    _local.note_slot(key, self.member)
                return taken
        return _local.take_slot(key, self.member, cap, unless_full)

    async def refresh(self) -> bool:
        """Keep the slots alive while the socket is open; False when one was lost (it expired
        and others took it: a process stalled past SLOT_TTL_SECONDS), so the socket must go."""
        for key, cap in self.held:
            try:
                if await self._take_slot(key, cap) != TAKEN:
                    return False
            except LimiterBusy:
                continue  # refreshed next time, well before the slot expires
        return True

    async def release(self) -> None:
        held, self.held = self.held, []
        limiter = _redis_limiter()
        for key, _cap in held:
            # Both stores: a slot taken while Redis timed out may have been taken there too.
            _local.release_slot(key, self.member)
            if limiter is None:
                continue
            try:
                await limiter.call(lambda r, key=key: r.release_slot(key, self.member))
            except Exception:
                logger.info("socket limits: %s left to expire", key)


async def _count(keys: list[str], window: int) -> list[int]:
    """Add one to fixed-window counters; the new counts."""
    limiter = _redis_limiter()
    if limiter is not None:
        try:
            return await limiter.call(lambda r: r.count(keys))
        except LimiterBusy:
            raise
        except Exception as error:
            if not _unreachable(error):
                raise
            _log_outage(error)
    return [_local.count(key, window) for key in keys]


async def spend_message_budget(*, conversation_id: int, address: str) -> Refusal | None:
    """Count one customer message against its conversation's and its address's budget per
    minute; a refusal when either is spent or the limiter is overloaded (the message must then
    not be stored)."""
    window = int(time.time() // BUDGET_WINDOW_SECONDS)
    budgets = {
        "conversation": (
            f"{KEY_PREFIX}messages:conversation:{conversation_id}:{window}",
            _limits()["MESSAGES_PER_CONVERSATION_PER_MINUTE"],
        ),
        "address": (
            f"{KEY_PREFIX}messages:address:{address}:{window}",
            _limits()["MESSAGES_PER_ADDRESS_PER_MINUTE"],
        ),
    }
    try:
        counts = await _count([key for key, _cap in budgets.values()], window)
    except LimiterBusy:
        return Refusal(code="busy", scope="conversation", limit=0)
    for (which, (_key, cap)), count in zip(budgets.items(), counts, strict=True):
        if count > cap:
            return Refusal(code="rate_limited", scope=which, limit=cap)
    return None


class ConversationTurns:
    """Per process: one conversation's frames reach the database one at a time, in arrival
    order (``async with conversation_turns.turn(id)``), so the one database thread takes work
    from the conversations in turn and a flooded one queues one store in front of the others,
    not one per socket."""

    def __init__(self):
        self.turns: dict[int, list] = {}  # conversation id -> [lock, sockets waiting or in]

    @contextlib.asynccontextmanager
    async def turn(self, conversation_id: int):
        entry = self.turns.setdefault(conversation_id, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self.turns[conversation_id]


conversation_turns = ConversationTurns()


def clear_all() -> None:
    """Forget every slot and budget (tests)."""
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1)
        try:
            keys = list(client.scan_iter(f"{KEY_PREFIX}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
    _local.clear()


# --- JSON from clients ---------------------------------------------------------------------------

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


class JsonTooDeep(ValueError):
    def __init__(self, limit: int):
        super().__init__(f"JSON nested deeper than {limit} levels")
        self.limit = limit


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether arrays/objects nest deeper than ``limit``, counted without parsing (the parser
    itself recurses, and 1,000 levels of ``[`` overflow it). Brackets inside strings don't count."""
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def load_client_json(raw: str | bytes):
    """``json.loads`` for anything a client sent: ValueError for bad JSON, ``JsonTooDeep`` (a
    ValueError) past ``MAX_JSON_DEPTH`` levels, checked before parsing."""
    text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
    limit = _limits()["MAX_JSON_DEPTH"]
    if json_depth_exceeds(text, limit):
        raise JsonTooDeep(limit)
    return json.loads(text)
