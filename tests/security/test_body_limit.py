"""config.body_limit in front of any ASGI app: the refusals happen without the app reading a
byte too many (the real server is exercised in tests/abuse/test_request_bodies.py)."""

import asyncio

from config.body_limit import RequestBodyLimitMiddleware


async def run(headers, chunks, *, limit=100, timeout=5.0, stall=False):
    """Run the middleware around an app that reads the whole body; what was sent back, how
    many chunks the client had to hand over, and what the app saw."""
    sent, handed, seen = [], [], []

    async def receive():
        if not chunks:
            if stall:
                await asyncio.sleep(3600)
            return {"type": "http.disconnect"}
        handed.append(chunks[0])
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks) or stall}

    async def send(message):
        sent.append(message)

    async def app(scope, receive, send):
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        if seen[-1] != "http.disconnect":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    middleware = RequestBodyLimitMiddleware(app, max_bytes=limit, timeout_seconds=timeout)
    scope = {"type": "http", "headers": headers}
    await asyncio.wait_for(middleware(scope, receive, send), 10)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, len(handed), seen


async def test_a_declared_length_over_the_limit_is_refused_before_reading():
    status, handed, seen = await run([(b"content-length", b"10000000000")], [b"x" * 50] * 3)
    assert (status, handed, seen) == (413, 0, [])


async def test_a_streamed_body_is_cut_when_it_passes_the_limit():
    status, handed, seen = await run([], [b"x" * 40] * 100)
    assert status == 413
    assert handed == 3  # 120 bytes: over the limit, and not one chunk more
    assert seen == ["http.request", "http.request", "http.disconnect"]


async def test_a_stalled_body_is_answered_408():
    status, _, seen = await run([(b"content-length", b"80")], [b"x" * 10], timeout=0.2, stall=True)
    assert status == 408
    assert seen[-1] == "http.disconnect"


async def test_a_body_within_the_limit_reaches_the_app():
    status, handed, seen = await run([(b"content-length", b"80")], [b"x" * 40, b"x" * 40])
    assert (status, handed, seen) == (200, 2, ["http.request", "http.request"])
