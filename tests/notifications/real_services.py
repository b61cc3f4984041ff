"""A real SMTP server on loopback (aiosmtpd) and a real Celery worker (subprocess) for tests."""

import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from email.message import Message
from pathlib import Path

from aiosmtpd.controller import Controller
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class _Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


class SMTPServer:
    """aiosmtpd on 127.0.0.1:``port``; stop() and start() again to simulate an outage."""

    def __init__(self, port: int):
        self.port = port
        self.recorder = _Recorder()
        self.controller = None

    def start(self):
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[tuple[list[str], Message]]:
        with self.recorder.lock:
            return list(self.recorder.messages)

    def recipients(self) -> list[str]:
        return sorted(rcpt for rcpts, _msg in self.messages for rcpt in rcpts)

    def clear(self):
        with self.recorder.lock:
            self.recorder.messages.clear()


def database_url() -> str:
    """The URL of the database the tests use now (pytest-django's test database)."""
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgresql://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def _die_with_parent():
    """In the child: if the test process dies (killed, not torn down), so does the worker."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class CeleryWorker:
    """``celery -A config worker`` in a subprocess, consuming one queue of its own, against the
    test database and Redis, sending email through SMTP on ``smtp_port``."""

    def __init__(self, *, smtp_port: int):
        self.queue = f"test-notify-{uuid.uuid4().hex[:10]}"
        self.smtp_port = smtp_port
        self.log_path = Path(f"/tmp/{self.queue}.log")
        self.process = None

    def start(self, *, timeout: float = 60):
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.smtp_port),
            "EMAIL_TIMEOUT": "5",
            "SECRET_KEY": settings.SECRET_KEY,
            "SITE_URL": settings.SITE_URL,
            "HTTPS_ONLY": "0",
            "DEBUG": "0",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "LOG_LEVEL": "INFO",
            "TEST_CELERY_QUEUE": self.queue,
        }
        self.log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.notifications.worker_app",
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "-Q",
                self.queue,
                "-n",
                f"{self.queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            wait_for(self._ready, timeout=timeout, interval=0.2, what="the Celery worker")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the Celery worker exited:\n{self.output()}")
        return " ready." in self.output()

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, *, timeout: float = 20):
        """Warm shutdown, then kill if it does not stop; remove the queue from Redis."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if getattr(self, "log", None) is not None:
            self.log.close()  # the log stays in /tmp for a failed run to be read
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
        client.delete(
            self.queue, f"_kombu.binding.{self.queue}", f"_kombu.binding_permanent.{self.queue}"
        )
        client.close()
