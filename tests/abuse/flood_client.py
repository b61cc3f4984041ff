"""The attacker of ``test_socket_flood``, run as a process of its own (an attacker is another
machine): its handshakes and frames must not share an event loop with the customer whose
acknowledgements the test times, or the figure would measure the test's own client.

    python -m tests.abuse.flood_client URL ORIGIN ADDRESS SOCKETS MESSAGES RETRY TIMEOUT

SOCKETS sockets to one conversation at once. An accepted one sends MESSAGES message frames, reads
their answers and stays open; a refused one connects again RETRY seconds later, so the flood
lasts until the parent writes a line to stdin (or TIMEOUT passes). Prints ``started`` once, then
one JSON line: sockets accepted, the most held at once, close codes of the refusals and of
accepted sockets the server closed before the end, handshakes made, and what each message got
(``acked``, ``rate_limited``, ``busy``, ...); apart, the sockets let in after the stop (handshakes
under way when the held ones closed)."""

import asyncio
import json
import sys
from collections import Counter

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake


async def first_frame(ws, timeout: float) -> dict | int:
    """The first frame (an accepted socket says connection.state), or the close code."""
    try:
        return json.loads(await asyncio.wait_for(ws.recv(), timeout))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else 1006


async def flood_one(args, number: int, outcome: dict, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            ws = await connect(
                args["url"],
                origin=args["origin"],
                additional_headers={"X-Forwarded-For": args["address"]},
                open_timeout=args["timeout"],
                max_queue=None,
            )
        except (OSError, TimeoutError, InvalidHandshake) as error:
            outcome["failed"][type(error).__name__] += 1
            await asyncio.sleep(args["retry"])
            continue
        outcome["handshakes"] += 1
        try:
            first = await first_frame(ws, args["timeout"])
            if isinstance(first, int):
                outcome["closed"][first] += 1
            elif stop.is_set():
                # Let in after the stop, once the held sockets had closed and freed their slots:
                # counted apart (the cap was kept), not held, no chat.
                outcome["accepted_after_stop"] += 1
                return
            else:
                await hold(args, number, ws, outcome, stop)
                if stop.is_set():
                    return
        finally:
            await ws.close()
        await asyncio.sleep(args["retry"])


async def hold(args, number: int, ws, outcome: dict, stop: asyncio.Event) -> None:
    """An accepted socket: chat, then keep it (an attacker keeps what it gets) until told to
    stop or until the server closes it (counted in ``dropped`` by close code; the caller then
    connects again). ``peak_open``: the most accepted sockets held at one time."""
    outcome["accepted"] += 1
    outcome["open"] += 1
    outcome["peak_open"] = max(outcome["peak_open"], outcome["open"])
    try:
        try:
            await chat(args, number, ws, outcome)
        except ConnectionClosed:
            pass
        else:
            closed = asyncio.ensure_future(ws.wait_closed())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({closed, stopped}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (closed, stopped):
                waiter.cancel()
    finally:
        outcome["open"] -= 1
    if not stop.is_set():
        outcome["dropped"][ws.close_code if ws.close_code is not None else 1006] += 1


async def chat(args, number: int, ws, outcome: dict) -> None:
    for n in range(args["messages"]):
        frame = {"type": "message", "text": f"flood {number}-{n}", "client_id": f"f{number}x{n}"}
        await ws.send(json.dumps(frame))
    answered = 0
    while answered < args["messages"]:
        frame = json.loads(await asyncio.wait_for(ws.recv(), args["timeout"]))
        if frame.get("client_id"):
            answered += 1
            outcome["answers"][
                "acked" if frame["type"] == "message.created" else frame["code"]
            ] += 1


async def flood(args: dict) -> dict:
    outcome = {
        "accepted": 0,
        "accepted_after_stop": 0,
        "open": 0,
        "peak_open": 0,
        "dropped": Counter(),
        "handshakes": 0,
        "closed": Counter(),
        "failed": Counter(),
        "answers": Counter(),
    }
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    told = loop.run_in_executor(None, sys.stdin.readline)
    told.add_done_callback(lambda _: stop.set())
    loop.call_later(args["timeout"], stop.set)
    print("started", flush=True)
    await asyncio.gather(*(flood_one(args, n, outcome, stop) for n in range(args["sockets"])))
    return outcome


def main(argv: list[str]) -> None:
    url, origin, address, sockets, messages, retry, timeout = argv
    args = {
        "url": url,
        "origin": origin,
        "address": address,
        "sockets": int(sockets),
        "messages": int(messages),
        "retry": float(retry),
        "timeout": float(timeout),
    }
    print(json.dumps(asyncio.run(flood(args))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
