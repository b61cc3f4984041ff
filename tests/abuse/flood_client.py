"""The attacker of ``test_socket_flood``, run as a process of its own (an attacker is another
machine): its 200 handshakes and 4,000 frames must not share an event loop with the customer
whose acknowledgements the test times, or the figure measures the test's own client.

    python -m tests.abuse.flood_client URL ORIGIN ADDRESS SOCKETS MESSAGES TIMEOUT

prints ``started`` once, then one JSON line: how many sockets were accepted, the close codes of
the refused ones, and what each message got (``acked``, ``rate_limited``, ``busy``, ...)."""

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def first_frame(ws, timeout: float) -> dict | int:
    """The first frame (an accepted socket says connection.state), or the close code."""
    try:
        return json.loads(await asyncio.wait_for(ws.recv(), timeout))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else 1006


async def flood_one(args, number: int, outcome: dict, all_tried: asyncio.Event) -> None:
    """One socket; an accepted one stays open until every socket has tried (an attacker keeps
    what it gets), so the cap is measured on sockets open at once."""
    ws = await connect(
        args["url"],
        origin=args["origin"],
        additional_headers={"X-Forwarded-For": args["address"]},
        open_timeout=args["timeout"],
        max_queue=None,
    )
    try:
        first = await first_frame(ws, args["timeout"])
        outcome["tried"] += 1
        if outcome["tried"] == args["sockets"]:
            all_tried.set()
        if isinstance(first, int):
            outcome["closed"].append(first)
            return
        outcome["accepted"] += 1
        for n in range(args["messages"]):
            frame = {
                "type": "message",
                "text": f"flood {number}-{n}",
                "client_id": f"f{number}x{n}",
            }
            await ws.send(json.dumps(frame))
        answered = 0
        while answered < args["messages"]:
            frame = json.loads(await asyncio.wait_for(ws.recv(), args["timeout"]))
            if frame.get("client_id"):
                answered += 1
                kind = "acked" if frame["type"] == "message.created" else frame["code"]
                outcome["answers"][kind] = outcome["answers"].get(kind, 0) + 1
        await asyncio.wait_for(all_tried.wait(), args["timeout"] * 4)
    finally:
        await ws.close()


async def flood(args: dict) -> dict:
    outcome = {"tried": 0, "accepted": 0, "closed": [], "answers": {}}
    all_tried = asyncio.Event()
    print("started", flush=True)
    await asyncio.gather(*(flood_one(args, n, outcome, all_tried) for n in range(args["sockets"])))
    return outcome


def main(argv: list[str]) -> None:
    url, origin, address, sockets, messages, timeout = argv
    args = {
        "url": url,
        "origin": origin,
        "address": address,
        "sockets": int(sockets),
        "messages": int(messages),
        "timeout": float(timeout),
    }
    print(json.dumps(asyncio.run(flood(args))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
