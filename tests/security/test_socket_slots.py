"""The socket caps themselves (crm.limits.SocketSlots) against a real Redis: many sockets taking
slots at once, from one event loop and from several (each a process of its own, with its own
client and connections), never get more than the cap; a dead process's slots expire; an
unreachable Redis leaves the cap to each process; an overloaded limiter refuses.

Under a 200-socket flood the product once let 11-33 sockets of one conversation in against a cap
of 5: redis-py's pool (100 connections by default) raised "Too many connections" for the
handshakes past it, and the limiter let those through uncounted."""

import asyncio

import pytest

from crm import limits
from tests.faults.services import free_port
from tests.races import race

CAP = 5
CONVERSATION = 424242


def slots(member: str, address: str = "203.0.113.9") -> limits.SocketSlots:
    return limits.SocketSlots(address=address, member=member)


@pytest.fixture
def cap(settings):
    settings.LIVE_ESCALATION = {
        **settings.LIVE_ESCALATION,
        "SOCKETS_PER_CONVERSATION": CAP,
        "SOCKETS_PER_ADDRESS": 10_000,
    }


async def take_all(members: list[str]) -> list[limits.SocketSlots]:
    """Every member asks for the conversation's slot at once; those that got one."""
    held = [slots(member) for member in members]
    refusals = await asyncio.gather(*(s.take_conversation(CONVERSATION) for s in held))
    return [s for s, refusal in zip(held, refusals, strict=True) if refusal is None]


@pytest.mark.redis
async def test_300_sockets_taking_at_once_get_exactly_the_cap(cap):
    """More takers than the limiter's connections (LIMITER_CONCURRENCY) and than redis-py's
    default pool: the rest wait for a connection, none is let through uncounted."""
    winners = await take_all([f"loop-{n}" for n in range(300)])
    assert len(winners) == CAP
    assert await slots("late").take_conversation(CONVERSATION) is not None

    await winners[0].release()
    assert await slots("after-release").take_conversation(CONVERSATION) is None


@pytest.mark.redis
def test_takers_in_several_processes_at_once_get_exactly_the_cap(cap):
    """Eight event loops in threads, each with its own Redis client (as eight processes),
    100 takers each, released together."""

    def one_process(i):
        return len(asyncio.run(take_all([f"p{i}-{n}" for n in range(100)])))

    assert sum(race(one_process, 8)) == CAP


@pytest.mark.redis
def test_sockets_opening_and_closing_at_once_never_hold_more_than_the_cap(cap):
    """Churn: takers in four loops take, hold a moment and release, over and over; the slots
    held at any moment (counted by the holders themselves) never pass the cap."""
    holding = {"now": 0, "most": 0, "taken": 0}

    def one_process(i):
        async def churn():
            for round_ in range(15):
                winners = await take_all([f"c{i}-{round_}-{n}" for n in range(20)])
                holding["now"] += len(winners)  # one thread at a time runs this line (GIL)
                holding["most"] = max(holding["most"], holding["now"])
                holding["taken"] += len(winners)
                await asyncio.sleep(0.005)
                holding["now"] -= len(winners)
                await asyncio.gather(*(w.release() for w in winners))

        asyncio.run(churn())

    race(one_process, 4)
    assert holding["most"] <= CAP
    assert holding["taken"] >= 15  # the slots were taken again and again, not stuck


@pytest.mark.redis
async def test_the_slots_of_a_process_that_died_expire(cap, monkeypatch):
    """A process killed without closing its sockets never releases their slots; they expire
    after SLOT_TTL_SECONDS, and an open socket's heartbeat (refresh) keeps its own."""
    monkeypatch.setattr(limits, "SLOT_TTL_SECONDS", 2)
    alive = slots("alive")
    assert await alive.take_conversation(CONVERSATION) is None
    assert len(await take_all([f"dead-{n}" for n in range(CAP)])) == CAP - 1  # never released
    assert await slots("new").take_conversation(CONVERSATION) is not None

    for _ in range(3):
        await asyncio.sleep(1)
        assert await alive.refresh()
    # the dead process's slots have expired (2 s), the refreshed one has not
    assert len(await take_all([f"new-{n}" for n in range(CAP)])) == CAP - 1


@pytest.mark.redis
async def test_a_socket_whose_slot_expired_and_was_taken_learns_it_on_refresh(cap, monkeypatch):
    monkeypatch.setattr(limits, "SLOT_TTL_SECONDS", 1)
    stalled = slots("stalled")
    assert await stalled.take_conversation(CONVERSATION) is None
    await asyncio.sleep(1.2)  # its process stalled past the expiry
    assert len(await take_all([f"other-{n}" for n in range(CAP)])) == CAP
    assert not await stalled.refresh()  # the consumer closes it with 4429


async def test_while_redis_is_unreachable_each_process_keeps_the_cap(cap, settings):
    """Nothing listens on the port: every call fails at once, and the process counts alone."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    winners = await take_all([f"outage-{n}" for n in range(50)])
    assert len(winners) == CAP
    await winners[0].release()
    assert len(await take_all(["outage-late-1", "outage-late-2"])) == 1


@pytest.mark.redis
async def test_when_redis_becomes_unreachable_the_process_counts_its_open_sockets(
    cap, settings, monkeypatch
):
    """Sockets let in while Redis answered still count once it does not (a call that fails or
    times out under load must not start a fresh count from zero)."""
    assert len(await take_all([f"before-{n}" for n in range(CAP - 2)])) == CAP - 2
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    # This loop's limiter was made above with the reachable URL and would go on using it.
    monkeypatch.setattr(limits, "_redis_limiters", {})
    assert len(await take_all([f"during-{n}" for n in range(10)])) == 2


@pytest.mark.redis
async def test_an_overloaded_limiter_refuses_instead_of_letting_through(cap, monkeypatch):
    """Every turn to call Redis is taken (as by a flood) and none comes back in time: the
    socket is refused as busy, not let in uncounted."""
    monkeypatch.setattr(limits, "LIMITER_WAIT_SECONDS", 0.1)
    assert await slots("first").take_conversation(CONVERSATION) is None  # makes the limiter
    limiter = limits._redis_limiter()
    for _ in range(limits.LIMITER_CONCURRENCY):
        await limiter.gate.acquire()
    try:
        refusal = await slots("waiting").take_conversation(CONVERSATION)
        assert refusal is not None and refusal.code == "busy"
        budget = await limits.spend_message_budget(conversation_id=CONVERSATION, address="x")
        assert budget is not None and budget.code == "busy"
    finally:
        for _ in range(limits.LIMITER_CONCURRENCY):
            limiter.gate.release()
