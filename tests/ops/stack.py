"""The production stack as `make serve` runs it (honcho + Procfile), for tests: one node is one
honcho with its own port and metrics folder. Every wait is bounded; ``stop()`` sends honcho the
SIGTERM an operator would and returns its exit code (SIGKILL to the group if it hangs)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tests.faults.services import REPO, free_port, kill_group, product_env, wait_for

HONCHO = str(Path(sys.executable).with_name("honcho"))
METRICS_TOKEN = "ops-test-metrics-token-0123456789"


class Node:
    def __init__(self, *, env: dict, processes=("web", "worker", "beat"), web_concurrency=2):
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="serve-node-"))
        (self.folder / "metrics").mkdir()
        self.env = product_env(
            **env,
            METRICS_TOKEN=METRICS_TOKEN,
            WEB_CONCURRENCY=str(web_concurrency),
            CELERY_CONCURRENCY="1",
            PROMETHEUS_MULTIPROC_DIR=str(self.folder / "metrics"),
            CELERY_BEAT_SCHEDULE=str(self.folder / "beat-schedule"),
            LOG_LEVEL="INFO",
        )
        self.processes = processes
        self.log_path = self.folder / "honcho.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Node:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [HONCHO, "start", "--no-colour", "--port", str(self.port), *self.processes],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            wait_for(self._up, timeout=90, what=f"the node on port {self.port} to be up")
        except BaseException:
            self.kill()
            raise
        return self

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError("honcho exited at start:\n" + self.log()[-4000:])
        worker_ready = "worker" not in self.processes or " ready." in self.log()
        return worker_ready and self.get("/healthz")[0] == 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, *, token: str | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def metrics(self) -> str:
        status, body = self.get("/metrics", token=METRICS_TOKEN)
        assert status == 200, body
        return body.decode()

    def stop(self, *, timeout: float = 20) -> int | None:
        """SIGTERM to honcho alone (as an operator or a supervisor would): it stops its
        processes gracefully. The exit code, or None if it had to be killed."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """SIGKILL honcho and each of its processes (each runs in a process group of its own)."""
        if self.process is None:
            return
        kill_group(self.process, signal.SIGKILL, timeout=10)
        for pid in re.findall(r"started \(pid=(\d+)\)", self.log()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGKILL)


def metric_value(text: str, sample: str) -> float | None:
    """The value of one exact sample line (name and labels as Prometheus prints them)."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return None
