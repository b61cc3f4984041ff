"""Client sockets for the tests that run the product as a server (tests/faults, tests/ops,
tests/abuse): a websocket whose JSON frames are collected as they arrive, to wait for one by
predicate, and the customer's and the agent's socket opened as the widget and the workspace do.
Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from websockets.asyncio.client import connect

FRAME_TIMEOUT = 30.0


class Socket:
    """A websocket whose incoming JSON frames are collected; ``wait_for`` a matching one."""

    def __init__(self, ws):
        self.ws = ws
        self.frames: list[dict] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls, url: str, *, origin: str, cookie: str | None = None, timeout: float = FRAME_TIMEOUT
    ) -> Socket:
        headers = {"Cookie": cookie} if cookie else None
        return cls(
            await connect(url, origin=origin, additional_headers=headers, open_timeout=timeout)
        )

    async def _read(self):
        with contextlib.suppress(Exception):  # closed: the frames so far stay readable
            async for text in self.ws:
                self.frames.append(json.loads(text))
                self._new.set()

    async def wait_for(self, predicate, what: str, timeout: float = FRAME_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for frame in self.frames[seen:]:
                if predicate(frame):
                    return frame
            seen = len(self.frames)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no frame {what} within {timeout:.0f} s; got {self.frames}")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), remaining)

    async def send(self, frame: dict) -> None:
        await self.ws.send(json.dumps(frame))

    async def close(self) -> None:
        self._reader.cancel()
        await self.ws.close()


async def open_customer(port: int, conversation, after: int | None = None) -> Socket:
    """The widget's socket, once it has said the conversation's mode (its replay is done)."""
    url = f"ws://127.0.0.1:{port}/ws/conversations/{conversation.pk}/?token="
    url += conversation.customer_token + (f"&after={after}" if after else "")
    socket = await Socket.open(url, origin=f"http://127.0.0.1:{port}")
    await socket.wait_for(lambda f: f["type"] == "conversation.mode", "conversation.mode")
    return socket


async def open_agent(port: int, cookie: str) -> Socket:
    """The workspace's socket with a session cookie, once it has said its connection state."""
    socket = await Socket.open(
        f"ws://127.0.0.1:{port}/ws/agent/", origin=f"http://127.0.0.1:{port}", cookie=cookie
    )
    await socket.wait_for(lambda f: f["type"] == "connection.state", "connection.state")
    return socket
