"""Endpoints for the machines around the product, answered before any other middleware (a load
balancer or Prometheus calls over plain HTTP with whatever Host header it has):

- ``/healthz``: the process answers (liveness). No I/O.
- ``/readyz``: PostgreSQL, Redis (channel layer), the Celery broker reachable and every migration
  applied (readiness); 503 naming what failed.
- ``/metrics``: Prometheus text. With ``METRICS_TOKEN`` set, only ``Authorization: Bearer <token>``;
  without it, only a loopback client that did not come through a proxy.

And ``RequestContextMiddleware``: every request gets an id (the caller's ``X-Request-ID`` when it
is sane) that every log line of the request carries and the response echoes.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import re
import secrets
import time

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse, JsonResponse

from crm import logcontext, metrics

logger = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 2.0
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# --- readiness ----------------------------------------------------------------------------------

_migrations_applied: set[str] = set()


def check_database(connection) -> None:
    """A round trip, then every migration applied (remembered once true: nothing un-applies)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    if connection.alias in _migrations_applied:
        return
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        first = pending[0][0]
        raise RuntimeError(
            f"{len(pending)} migration(s) not applied, first {first.app_label}.{first.name}"
        )
    _migrations_applied.add(connection.alias)


def check_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(
        url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()


def check_broker(url: str) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=CHECK_TIMEOUT_SECONDS) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=CHECK_TIMEOUT_SECONDS)


def readiness(*, database=None, redis_url=None, broker_url=None, eager=None) -> dict[str, str]:
    """Each check's outcome: "ok", "not used" (the embedded defaults: in-memory layer, eager
    Celery) or the error. Arguments default to this process's settings."""
    database = database or connections[DEFAULT_DB_ALIAS]
    redis_url = settings.REDIS_URL if redis_url is None else redis_url
    broker_url = settings.CELERY_BROKER_URL if broker_url is None else broker_url
    eager = settings.CELERY_TASK_ALWAYS_EAGER if eager is None else eager
    checks = {
        "database": lambda: check_database(database),
        "redis": (lambda: check_redis(redis_url)) if redis_url else None,
        "broker": None
        if eager or broker_url.startswith("memory://")
        else (lambda: check_broker(broker_url)),
    }
    outcome = {}
    for name, check in checks.items():
        if check is None:
            outcome[name] = "not used"
            continue
        try:
            check()
        except Exception as error:  # any failure is "not ready", named
            outcome[name] = f"{type(error).__name__}: {error}"[:300]
        else:
            outcome[name] = "ok"
    return outcome


def readyz_response() -> JsonResponse:
    outcome = readiness()
    failed = [name for name, result in outcome.items() if result not in ("ok", "not used")]
    if failed:
        logger.warning("not ready: %s", ", ".join(f"{n} ({outcome[n]})" for n in failed))
    response = JsonResponse(
        {"status": "unavailable" if failed else "ready", "failed": failed, "checks": outcome},
        status=503 if failed else 200,
    )
    # The warning above names what failed; without this Django adds an ERROR line
    # ("Service Unavailable: /readyz") for every probe of a balancer while a service is down.
    response._has_been_logged = True
    return response


# --- metrics ------------------------------------------------------------------------------------


class QueueDepthCollector:
    """Queue depth and oldest wait by team and priority, read from the database at scrape time
    (the database is the truth; any process can answer)."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from escalation.selectors import queue_depth

        depth = GaugeMetricFamily(
            "le_queue_depth",
            "Queued escalations by team and priority.",
            labels=["team", "priority"],
        )
        oldest = GaugeMetricFamily(
            "le_queue_oldest_wait_seconds",
            "How long the oldest queued escalation has waited, by team and priority.",
            labels=["team", "priority"],
        )
        for row in queue_depth():
            depth.add_metric([row["team"], row["priority"]], row["count"])
            oldest.add_metric([row["team"], row["priority"]], row["oldest_wait_seconds"])
        yield depth
        yield oldest


def metrics_text() -> tuple[bytes, str]:
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    if settings.PROMETHEUS_MULTIPROC_DIR:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        for collector in list(REGISTRY._collector_to_names):  # this process's own metrics
            registry.register(collector)
    registry.register(QueueDepthCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def metrics_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(
            given.strip().encode(), token.encode()
        )
    if "HTTP_X_FORWARDED_FOR" in request.META:
        return False  # came through a proxy: the loopback address is the proxy's
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_response(request) -> HttpResponse:
    if not metrics_allowed(request):
        return JsonResponse(
            {"error": {"code": "forbidden", "message": "Metrics need the bearer token."}},
            status=403 if settings.METRICS_TOKEN else 404,
        )
    try:
        body, content_type = metrics_text()
    except Exception:
        logger.exception("metrics collection failed")
        return JsonResponse(
            {"error": {"code": "unavailable", "message": "Metrics are unavailable."}}, status=503
        )
    return HttpResponse(body, content_type=content_type)


def forget_process(pid: int | None = None) -> None:
    """A process that ends takes its live gauges (open sockets) along (multiprocess mode)."""
    if settings.PROMETHEUS_MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


atexit.register(forget_process)  # uvicorn workers end through here


# --- middleware ---------------------------------------------------------------------------------

OPS_PATHS = {
    "/healthz": lambda request: JsonResponse({"status": "ok"}),
    "/readyz": lambda request: readyz_response(),
    "/metrics": metrics_response,
}


class OpsEndpointsMiddleware:
    """First in MIDDLEWARE: answers the ops paths before host validation or the HTTPS redirect.
    GET and HEAD only."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        answer = OPS_PATHS.get(request.path_info.rstrip("/") or "/")
        if answer is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return JsonResponse(
                {"error": {"code": "method_not_allowed", "message": "GET only."}}, status=405
            )
        return answer(request)


class RequestContextMiddleware:
    """Binds a request id (and the URL's conversation id, when it has one) for the log lines of
    this request, echoes ``X-Request-ID``, and times the request for ``/metrics``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = given if REQUEST_ID.match(given) else logcontext.new_request_id()
        # Not reset on the way out: Django logs 4xx/5xx after the middleware returns, and each
        # request runs in a context of its own (ASGI) or sets both again (a reused thread).
        logcontext.request_id.set(request_id)
        logcontext.conversation_id.set(None)
        started = time.perf_counter()
        response = self.get_response(request)
        metrics.http_requests.labels(request.method, f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started
        )
        response["X-Request-ID"] = request_id
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        conversation = view_kwargs.get("conversation_id")
        if conversation is not None:
            logcontext.bind_conversation(conversation)
