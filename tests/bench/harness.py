"""What every benchmark shares: statistics, progress, the results table, the machine's
description, free ports, and the server / worker processes the benchmarks start.

The processes run the real product (``config.asgi:application`` under uvicorn, ``celery -A config
worker``) against the benchmark's own DATABASE_URL / REDIS_URL; nothing shared is stopped.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


# --- statistics -----------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(samples_ms: list[float]) -> dict:
    """count, p50, p95, p99, max and mean of a list of milliseconds (rounded to 0.01 ms)."""

    def r(value):
        return None if value is None else round(value, 2)

    return {
        "count": len(samples_ms),
        "p50": r(percentile(samples_ms, 0.50)),
        "p95": r(percentile(samples_ms, 0.95)),
        "p99": r(percentile(samples_ms, 0.99)),
        "max": r(max(samples_ms) if samples_ms else None),
        "mean": r(statistics.fmean(samples_ms) if samples_ms else None),
    }


def ratio(measured: float | None, floor: float | None) -> float | None:
    if measured is None or not floor:
        return None
    return round(measured / floor, 1)


# --- progress and the table -----------------------------------------------------------------------


class Progress:
    """Counted steps on stderr: ``[3/7] handoff latency  120/200``."""

    def __init__(self, total_steps: int):
        self.total = total_steps
        self.step = 0
        self.label = ""
        self.tty = sys.stderr.isatty()
        self._last_line = 0.0

    def start(self, label: str) -> None:
        self.step += 1
        self.label = label
        self._write(f"[{self.step}/{self.total}] {label}", final=not self.tty)

    def count(self, done: int, of: int, extra: str = "") -> None:
        now = time.monotonic()
        if done < of and now - self._last_line < (0.2 if self.tty else 10.0):
            return
        self._last_line = now
        text = f"[{self.step}/{self.total}] {self.label}  {done}/{of} {extra}".rstrip()
        self._write(text, final=not self.tty)

    def note(self, text: str) -> None:
        self._write(f"      {text}", final=True)

    def done(self, summary: str = "") -> None:
        text = f"[{self.step}/{self.total}] {self.label}  done"
        if summary:
            text += f"  ({summary})"
        self._write(text, final=True)

    def _write(self, text: str, *, final: bool) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def format_table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    head = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "| " + head + " |", line]
    for row in rows:
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + " |")
    out.append(line)
    return "\n".join(out)


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


# --- the machine ----------------------------------------------------------------------------------


def machine_description() -> dict:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    load = None
    with contextlib.suppress(OSError):
        load = [round(x, 2) for x in os.getloadavg()]
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "load_average_at_start": load,
        "python": platform.python_version(),
    }


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in (
        "Django",
        "channels",
        "channels-redis",
        "uvicorn",
        "websockets",
        "celery",
        "redis",
        "psycopg",
    ):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    found.update(service_versions())
    return found


def service_versions() -> dict:
    out = {}
    with contextlib.suppress(Exception):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            out["postgresql"] = cursor.fetchone()[0]
    with contextlib.suppress(Exception):
        import redis
        from django.conf import settings

        out["redis-server"] = redis.Redis.from_url(settings.REDIS_URL).info()["redis_version"]
    return out


# --- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on port {port} within {timeout:.0f} s")


def stop_process(process: subprocess.Popen, *, timeout: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


@dataclass
class Services:
    """ASGI server processes and a Celery worker for one benchmark run; ``stop()`` ends them."""

    env: dict
    log_dir: Path
    servers: list[tuple[int, subprocess.Popen]] = field(default_factory=list)
    worker: subprocess.Popen | None = None
    worker_log: Path | None = None

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen:
        log = open(self.log_dir / log_name, "ab")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches its children
        )

    def start_servers(
        self, count: int, *, app: str = "config.asgi:application", log_prefix: str = "uvicorn"
    ) -> list[int]:
        ports = []
        first = len(self.servers)
        for index in range(count):
            port = free_port()
            process = self._spawn(
                [
                    PYTHON,
                    "-m",
                    "uvicorn",
                    app,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--ws-per-message-deflate",
                    "false",  # as the Procfile
                    "--no-access-log",
                ],
                f"{log_prefix}-{index}.log",
            )
            self.servers.append((port, process))
            ports.append(port)
        for port, process in self.servers[first:]:
            wait_for_port(port, timeout=60, process=process)
        return ports

    def server_pids(self) -> list[int]:
        return [process.pid for _port, process in self.servers]

    def start_worker(
        self,
        *,
        concurrency: int = 2,
        app: str = "config",
        queue: str | None = None,
        log_name: str = "celery-worker.log",
    ) -> None:
        """A Celery worker with the product's command-line options (prefork pool, no gossip,
        mingle or heartbeat), ready when this returns. ``queue``: consume that queue only, and
        leave the product's queue alone (the floors' bare worker)."""
        if queue is None:
            # Each worker starts on an empty queue: tasks an earlier benchmark left behind (the
            # load run stops its worker, so its analyses wait in Redis) would otherwise be
            # served first and measured as this benchmark's latency.
            from config.celery import app as celery_app

            celery_app.control.purge()
        self.worker_log = self.log_dir / log_name
        self.worker = self._spawn(
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                *(["--queues", queue] if queue else []),
            ],
            log_name,
        )
        self.wait_for_worker(timeout=90)

    def wait_for_worker(self, *, timeout: float) -> None:
        """Until the worker logs "ready"; a worker that exits raises with its log's tail."""
        log = self.worker_log
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            if " ready." in text:
                return
            if self.worker.poll() is not None:
                raise RuntimeError(
                    f"the Celery worker exited with {self.worker.returncode}:\n{text[-3000:]}"
                )
            time.sleep(0.2)
        raise TimeoutError(f"the Celery worker was not ready within {timeout:.0f} s (see {log})")

    def check_alive(self) -> None:
        for port, process in self.servers:
            if process.poll() is not None:
                raise RuntimeError(f"the uvicorn process on port {port} exited")
        if self.worker is not None and self.worker.poll() is not None:
            raise RuntimeError("the Celery worker exited (see its log)")

    def stop(self) -> None:
        for _port, process in self.servers:
            stop_process(process)
        self.servers.clear()
        if self.worker is not None:
            stop_process(self.worker)
            self.worker = None
