"""Finding 2: a body's size was checked only after Django had read it (a 300 MB POST was
written to a temporary file before the 413; ``Content-Length: 10000000000`` got no answer while
the server waited; unfinished bodies held connections for minutes).

Now ``config.body_limit`` refuses in front of Django: a declared length over the limit before a
byte is read, a chunked body the moment it passes the limit, a stalled body after the timeout.
The server runs with its own empty TMPDIR, which must still be empty at the end."""

import socket
import tempfile
import time
from pathlib import Path

import pytest

from tests.faults.services import product_env, start_uvicorn

LIMIT = 1024 * 1024
TIMEOUT = 2.0
WEBHOOK = "/api/webhooks/whatsapp/no-such-channel/"


@pytest.fixture(scope="module")
def server():
    tmpdir = Path(tempfile.mkdtemp(prefix="abuse-tmp-"))
    env = product_env(
        DATABASE_URL=None,
        REDIS_URL=None,
        SQLITE_PATH=str(tmpdir.parent / f"{tmpdir.name}.sqlite3"),
        TMPDIR=str(tmpdir),
        MAX_REQUEST_BODY_BYTES=str(LIMIT),
        REQUEST_BODY_TIMEOUT_SECONDS=str(TIMEOUT),
    )
    process, port = start_uvicorn(env)
    try:
        yield port, tmpdir
    finally:
        process.stop()


def read_status(sock: socket.socket, timeout: float) -> int | None:
    """The status code of the response on ``sock`` (None: closed or nothing within timeout)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data.split()[1])


def post_head(port: int, headers: str, path: str = WEBHOOK) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{headers}\r\n".encode()
    )
    return sock


@pytest.mark.parametrize("size", [300 * 1024 * 1024, 10_000_000_000], ids=["300MB", "10GB"])
def test_declared_length_over_the_limit_is_refused_before_reading(server, size):
    port, tmpdir = server
    started = time.monotonic()
    with post_head(port, f"Content-Length: {size}\r\n") as sock:
        status = read_status(sock, timeout=10)
    elapsed = time.monotonic() - started
    print(f"\nContent-Length {size:,}: HTTP {status} after {elapsed * 1000:.0f} ms, no body sent")
    assert status == 413
    assert list(tmpdir.iterdir()) == []


def test_streamed_body_is_cut_at_the_limit(server):
    """300 MB sent chunked (no length): refused once the limit is passed, not read to the end."""
    port, tmpdir = server
    chunk = b"x" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    started = time.monotonic()
    with post_head(port, "Transfer-Encoding: chunked\r\n") as sock:
        try:
            while sent < 300 * 1024 * 1024:
                sock.sendall(frame)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        status = read_status(sock, timeout=10)
    elapsed = time.monotonic() - started
    print(f"\nchunked 300 MB: HTTP {status} after {sent:,} bytes, {elapsed * 1000:.0f} ms")
    assert status == 413
    assert sent < 300 * 1024 * 1024  # the server stopped reading long before the end
    assert list(tmpdir.iterdir()) == []


def test_stalled_bodies_are_dropped_after_the_timeout(server):
    """Unfinished bodies no longer hold connections: each gets 408 after the timeout."""
    port, _ = server
    sockets = [post_head(port, "Content-Length: 1000\r\n") for _ in range(50)]
    started = time.monotonic()
    try:
        for sock in sockets:
            sock.sendall(b"{")  # one byte, then nothing
        statuses = [read_status(sock, timeout=TIMEOUT + 10) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    elapsed = time.monotonic() - started
    print(f"\n50 stalled bodies: {statuses.count(408)} answered 408 within {elapsed:.1f} s")
    assert statuses == [408] * 50


def test_a_body_within_the_limit_still_reaches_django(server):
    port, _ = server
    body = b"x" * (LIMIT - 10)
    with post_head(port, f"Content-Length: {len(body)}\r\n", path="/no-such-page/") as sock:
        sock.sendall(body)
        status = read_status(sock, timeout=10)
    assert status == 404  # Django read the body and routed the request
