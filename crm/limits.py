"""Fair use of the customer sockets, shared by every server process.

Two kinds of limit, both counted where every process sees them — Redis (``REDIS_URL``) when
configured, Django's cache otherwise (one process, or ``CACHE_URL``):

- **socket slots**: how many sockets may be open at once to one conversation and from one
  client address. A slot is a member of a Redis sorted set scored by its expiry; open sockets
  refresh theirs (``SOCKET_SLOT_TTL_SECONDS``), so a process that dies without closing frees
  its slots by itself.
- **message budgets**: how many messages one conversation and one address may send per
  minute (fixed windows).

A limiter that cannot reach its store lets the socket through (logged): the chat must keep
working while Redis is down (see the degraded mode in ``crm.consumers``).
"""

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

KEY_PREFIX = "le:limits:"
BUDGET_WINDOW_SECONDS = 60
SOCKET_SLOT_TTL_SECONDS = 90  # an open socket refreshes its slots well within this


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
    code: str
    scope: str  # which limit: "conversation" or "address"
    limit: int

    def scope_label(self) -> str:
        return _("conversation") if self.scope == "conversation" else _("address")


# --- the stores ----------------------------------------------------------------------------------

_redis_clients: dict = {}


def _redis():
    """One asyncio Redis client per event loop (a client's connections belong to its loop)."""
    if not settings.REDIS_URL:
        return None
    import redis.asyncio as aioredis

    loop = asyncio.get_running_loop()
    client = _redis_clients.get(loop)
    if client is None:
        for stale in [other for other in _redis_clients if other.is_closed()]:
            _redis_clients.pop(stale, None)
        client = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
        _redis_clients[loop] = client
    return client


async def _redis_acquire(key: str, member: str, cap: int) -> bool:
    now = time.time()
    pipe = _redis().pipeline(transaction=True)
    pipe.zremrangebyscore(key, "-inf", now)
    pipe.zadd(key, {member: now + SOCKET_SLOT_TTL_SECONDS})
    pipe.zcard(key)
    pipe.expire(key, SOCKET_SLOT_TTL_SECONDS)
    _, _, count, _ = await pipe.execute()
    if count > cap:  # two sockets racing for the last slot may both be refused: never both let in
        await _redis().zrem(key, member)
        return False
    return True


def _cache_acquire(key: str, member: str, cap: int) -> bool:
    cache.add(key, 0, timeout=None)
    try:
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=None)
        count = 1
    if count > cap:
        cache.decr(key)
        return False
    return True


async def _count(key: str) -> int:
    """Add one to a fixed-window counter; the new count."""
    client = _redis()
    if client is not None:
        pipe = client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, BUDGET_WINDOW_SECONDS + 5)
        count, _ = await pipe.execute()
        return count

    def incr():
        cache.add(key, 0, BUDGET_WINDOW_SECONDS + 5)
        try:
            return cache.incr(key)
        except ValueError:
            cache.set(key, 1, BUDGET_WINDOW_SECONDS + 5)
            return 1

    return await asyncio.to_thread(incr)


# --- what the consumer calls ---------------------------------------------------------------------


class SocketSlots:
    """The slots one customer socket holds: one for its address (taken first, before any
    database work, so a flood from one address costs the database nothing) and one for its
    conversation (taken once the token is checked, so nobody can fill another's conversation)."""

    def __init__(self, *, address: str, member: str):
        self.address = address
        self.member = member
        self.held: list[str] = []

    async def take_address(self) -> Refusal | None:
        key = f"{KEY_PREFIX}sockets:address:{self.address}"
        return await self._take("address", key, _limits()["SOCKETS_PER_ADDRESS"])

    async def take_conversation(self, conversation_id: int) -> Refusal | None:
        key = f"{KEY_PREFIX}sockets:conversation:{conversation_id}"
        return await self._take("conversation", key, _limits()["SOCKETS_PER_CONVERSATION"])

    async def _take(self, which: str, key: str, cap: int) -> Refusal | None:
        try:
            taken = await self._acquire(key, cap)
        except Exception:
            logger.warning("socket limiter unavailable; %s not counted", key)
            return None
        if not taken:
            return Refusal(code="too_many_sockets", scope=which, limit=cap)
        self.held.append(key)
        return None

    async def _acquire(self, key: str, cap: int) -> bool:
        if _redis() is not None:
            return await _redis_acquire(key, self.member, cap)
        return await asyncio.to_thread(_cache_acquire, key, self.member, cap)

    async def refresh(self) -> None:
        """Keep the slots alive while the socket is open (Redis only; the cache has no expiry)."""
        client = _redis()
        if client is None:
            return
        try:
            for key in self.held:
                await client.zadd(key, {self.member: time.time() + SOCKET_SLOT_TTL_SECONDS})
                await client.expire(key, SOCKET_SLOT_TTL_SECONDS)
        except Exception:
            logger.warning("socket limiter unavailable; slots not refreshed")

    async def release(self) -> None:
        held, self.held = self.held, []
        for key in held:
            try:
                if _redis() is not None:
                    await _redis().zrem(key, self.member)
                else:
                    await asyncio.to_thread(cache.decr, key)
            except Exception:
                logger.warning("socket limiter unavailable; %s released by expiry", key)


async def spend_message_budget(*, conversation_id: int, address: str) -> Refusal | None:
    """Count one customer message against its conversation's and its address's budget per
    minute; a refusal when either is spent (the message must then not be stored)."""
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
    for which, (key, cap) in budgets.items():
        try:
            count = await _count(key)
        except Exception:
            logger.warning("message budget unavailable; %s not counted", key)
            continue
        if count > cap:
            return Refusal(code="rate_limited", scope=which, limit=cap)
    return None


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
    cache.clear()


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
