"""PostgreSQL goes down under a running ASGI server and comes back.

What must hold: while it is down, requests and socket connections fail fast and cleanly (an HTTP
5xx, a refused socket) instead of hanging, and the server stays up; once PostgreSQL is back the
very next request and socket work, without restarting the server (health-checked persistent
connections, CONN_HEALTH_CHECKS).

The throwaway cluster gets this test database's schema and rows (pg_dump | psql): the staff
user, the session and the conversation made below.
"""

import asyncio
import json
import subprocess
import time

import httpx
import pytest
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from tests.factories import UserFactory

from .services import (
    PostgresCluster,
    product_env,
    start_uvicorn,
)
from .test_redis_outage import session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

FAST = 10.0  # "fails fast": seconds a request may take while the database is down


def copy_test_database(cluster: PostgresCluster, dbname: str) -> None:
    from django.db import connection

    db = connection.settings_dict
    subprocess.run(
        [
            str(cluster.bin / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.port),
            "-U",
            "postgres",
            dbname,
        ],
        check=True,
        timeout=30,
        capture_output=True,
    )
    dump = subprocess.run(
        [
            str(cluster.bin / "pg_dump"),
            "--no-owner",
            "--no-privileges",
            "-h",
            db.get("HOST") or "127.0.0.1",
            "-p",
            str(db.get("PORT") or 5432),
            "-U",
            db.get("USER") or "postgres",
            db["NAME"],
        ],
        check=True,
        timeout=60,
        capture_output=True,
        env={"PGPASSWORD": db.get("PASSWORD") or ""},
    )
    subprocess.run(
        [
            str(cluster.bin / "psql"),
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.port),
            "-U",
            "postgres",
            "-d",
            dbname,
        ],
        input=dump.stdout,
        check=True,
        timeout=60,
        capture_output=True,
    )


def timed_get(client: httpx.Client, path: str) -> tuple[int, float]:
    started = time.monotonic()
    response = client.get(path)
    return response.status_code, time.monotonic() - started


async def customer_socket_outcome(port: int, conversation) -> str:
    """ "live" when the widget socket opens and replays, else how it was refused."""
    url = (
        f"ws://127.0.0.1:{port}/ws/conversations/{conversation.pk}/"
        f"?token={conversation.customer_token}"
    )
    try:
        async with connect(url, origin=f"http://127.0.0.1:{port}", open_timeout=FAST) as ws:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), FAST))
                if frame["type"] == "conversation.mode":
                    return "live"
    except InvalidStatus as refused:
        return f"refused {refused.response.status_code}"
    except (WebSocketException, OSError) as error:
        return f"closed {type(error).__name__}"


def test_postgres_restart_fails_cleanly_and_recovers_without_restart(
    need_postgres_server, conversation
):
    staff = UserFactory(is_staff=True, is_superuser=True)
    cookie = session_cookie(staff)
    cluster = PostgresCluster().init()
    server = None
    try:
        cluster.start()
        copy_test_database(cluster, "fault")
        env = product_env(DATABASE_URL=cluster.url("fault"), REDIS_URL=None)
        env["SECRET_KEY"] = settings.SECRET_KEY
        server, port = start_uvicorn(env)
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Cookie": cookie}, timeout=30
        )

        assert timed_get(client, "/admin/")[0] == 200
        assert asyncio.run(customer_socket_outcome(port, conversation)) == "live"

        cluster.stop("fast")  # connections are cut, new ones refused
        for _ in range(2):
            status, seconds = timed_get(client, "/admin/")
            assert status >= 500, f"a request without a database answered {status}"
            assert seconds < FAST, f"a request without a database took {seconds:.1f} s"
        started = time.monotonic()
        outcome = asyncio.run(customer_socket_outcome(port, conversation))
        assert outcome != "live"
        assert time.monotonic() - started < FAST
        assert server.alive()

        cluster.start()
        # The very next request and socket work: no restart, no warm-up failures.
        assert timed_get(client, "/admin/")[0] == 200
        assert asyncio.run(customer_socket_outcome(port, conversation)) == "live"
        assert server.alive()
    finally:
        if server is not None:
            server.stop()
        cluster.destroy()
