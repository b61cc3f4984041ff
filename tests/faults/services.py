"""Throwaway services for fault tests, all on loopback and free ports, each started and stopped by
the test that breaks it: a Redis server, a PostgreSQL cluster (initdb in a temp dir), an SMTP
server, uvicorn serving the product, and Celery workers. Never the shared 5432 / 6379.

Every wait is bounded; every process runs in its own process group so ``kill`` reaches its
children; ``stop()`` is safe to call twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PG_BIN_ROOT = Path("/usr/lib/postgresql")
ON_CI = os.environ.get("CI", "").lower() == "true"


def folder_requested(config, folder: Path) -> bool:
    """Whether this pytest run asks for the tests in ``folder``: CI=true runs them all, and so
    does a path on the command line inside it (`make faults`); a plain `make test` on a
    developer's machine leaves them out (each starts and breaks real services)."""
    if ON_CI:
        return True
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == folder or folder in path.parents:
            return True
    return False


def need(condition: bool, what: str) -> None:
    """Skip without what a test needs; under CI=true that skip is a failure."""
    if condition:
        return
    import pytest

    if ON_CI:
        pytest.fail(f"CI=true must run the fault and abuse tests, but {what}")
    pytest.skip(what)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll until ``predicate()`` is truthy and return it; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def kill_group(process: subprocess.Popen, sig=signal.SIGTERM, *, timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


def postgres_bin() -> Path | None:
    if not PG_BIN_ROOT.exists():
        return None
    versions = sorted(
        (p for p in PG_BIN_ROOT.iterdir() if (p / "bin" / "initdb").exists()),
        key=lambda p: int(p.name) if p.name.isdigit() else 0,
    )
    return versions[-1] / "bin" if versions else None


class RedisServer:
    """``redis-server`` in the foreground as a child, no persistence; restartable on its port."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: port_open(self.port), timeout=15, what=f"redis on {self.port}")
        return self

    def stop(self, *, crash: bool = False) -> None:
        """Stop it; ``crash=True`` is SIGKILL (no goodbye to clients)."""
        if self.process is not None:
            kill_group(self.process, signal.SIGKILL if crash else signal.SIGTERM)
            self.process = None
        wait_for(lambda: not port_open(self.port), timeout=10, what="redis to stop")


class PostgresCluster:
    """A cluster of its own: initdb into a temp dir (as the ``postgres`` OS user when run as
    root), trust auth on loopback, started and stopped with pg_ctl."""

    def __init__(self):
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="fault-pg-"))
        self.data = self.dir / "data"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = list(args)
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def init(self) -> PostgresCluster:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        return self

    def start(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class SMTPServer:
    """aiosmtpd on loopback that records what it receives; can be started late (SMTP "down"
    until then)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.messages: list = []
        self.lock = threading.Lock()
        self.controller = None

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(
                (list(envelope.rcpt_tos), envelope.content.decode("utf8", "replace"))
            )
        return "250 OK"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def product_env(**overrides: str) -> dict:
    """The environment for a product process: this test run's settings, with overrides; a None
    value removes the variable."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "fault-test-secret-key",
            "HTTPS_ONLY": "0",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class Product:
    """A product process (uvicorn or a Celery worker) with its log in a temp file."""

    def __init__(self, args: list[str], env: dict, name: str):
        self.args = args
        self.env = env
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"fault-{name}-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self) -> Product:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            self.args,
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process)

    def kill9(self) -> None:
        """SIGKILL the whole process group at once (a worker and its pool children)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_uvicorn(env: dict) -> tuple[Product, int]:
    port = free_port()
    server = Product(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--ws-per-message-deflate",
            "false",  # as the Procfile
        ],
        env,
        "uvicorn",
    ).start()
    try:
        wait_for(
            lambda: port_open(port) or not server.alive(), timeout=60, what="uvicorn to listen"
        )
        if not server.alive():
            raise AssertionError("uvicorn exited at start:\n" + server.log()[-3000:])
    except BaseException:
        server.stop()
        raise
    return server, port


def start_worker(env: dict, *, app: str = "config", queues: str | None = None) -> Product:
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if queues:
        args += ["--queues", queues]
    worker = Product(args, env, "celery").start()
    try:
        wait_for(
            lambda: " ready." in worker.log() or not worker.alive(),
            timeout=90,
            what="the Celery worker to be ready",
        )
        if not worker.alive():
            raise AssertionError("the Celery worker exited at start:\n" + worker.log()[-3000:])
    except BaseException:
        worker.stop()
        raise
    return worker


def database_url_of_tests() -> str:
    """The URL of the database this pytest run uses (the test database on PostgreSQL)."""
    from django.db import connection

    db = connection.settings_dict
    auth = db.get("USER") or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    host = db.get("HOST") or "127.0.0.1"
    return f"postgres://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"
