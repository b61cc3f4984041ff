"""Prometheus metrics every layer may record (this module imports nothing of the domain).

In production several processes record (uvicorn workers, Celery pool processes): with
``PROMETHEUS_MULTIPROC_DIR`` set (``make serve`` sets it) prometheus_client writes each process's
values to files there and ``/metrics`` (``config.ops``) adds them up. Without it (``make run``,
tests) they live in this process's default registry. Queue depth is not recorded here: it is read
from the database when ``/metrics`` is scraped (``config.ops.QueueDepthCollector``).
"""

from prometheus_client import Counter, Gauge, Histogram

# Socket-to-socket paths are tens of milliseconds; analysis and waits run to minutes.
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10)
WAIT_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)

open_sockets = Gauge(
    "le_open_sockets",
    "WebSocket connections open now, by kind (customer, agent).",
    ["kind"],
    multiprocess_mode="livesum",
)
handoff_latency = Histogram(
    "le_handoff_latency_seconds",
    "Customer message stored -> escalation committed and announced to the queue.",
    buckets=FAST_BUCKETS,
)
detector_latency = Histogram(
    "le_detector_latency_seconds",
    "Time one detection took, by backend (local, claude).",
    ["backend"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
escalation_wait = Histogram(
    "le_escalation_wait_seconds",
    "Escalated -> taken over by an agent, by priority at pickup.",
    ["priority"],
    buckets=WAIT_BUCKETS,
)
task_runs = Counter(
    "le_celery_task_runs",
    "Celery task runs by task name and outcome (succeeded, failed, retried).",
    ["task", "outcome"],
)
task_duration = Histogram(
    "le_celery_task_duration_seconds",
    "Celery task run time by task name.",
    ["task"],
    buckets=FAST_BUCKETS,
)
http_requests = Histogram(
    "le_http_request_duration_seconds",
    "HTTP request time by method and status class (2xx, 4xx, ...).",
    ["method", "status"],
    buckets=FAST_BUCKETS,
)
