"""`make bench`: measure the product against DATABASE_URL / REDIS_URL and compare each figure with
its floor measured in the same run. Prints a table, writes bench-results.json and a chart.

    python -m tests.bench                 # everything at full size (about 8 minutes)
    python -m tests.bench --quick         # every benchmark, small sizes (about a minute)
    python -m tests.bench --only race,queue --race-rounds 20
    python -m tests.bench --only routing  # 50 agents, 1,000 escalations (a few minutes)

The benchmark's database is on DATABASE_URL's server: that database itself when its name contains
"bench", else the same name with "_bench" appended. It is created if missing and EMPTIED at the
start. The Redis db in REDIS_URL is FLUSHED too: give the benchmark a db number of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS = (
    "floors",
    "detector",
    "handoff",
    "message",
    "load",
    "ceiling",
    "scale",
    "race",
    # Routing before the queue benchmark: that one leaves 100,000 queued escalations behind, and
    # every queue change tells each waiting customer their place (announce_queue_places, eager
    # here), so routing after it measured 100,000 announcements per escalation.
    "routing",
    "queue",
)
# Raised for the benchmark's servers so pacing by the per-socket limit (20 per 10 s by default)
# does not become the figure; the load benchmark stays under the default rate per socket anyway.
SOCKET_RATE_LIMIT_FOR_BENCH = "1000000"
# Every benchmark socket comes from 127.0.0.1 and the handoff/message benchmarks reuse a few
# conversations: the fair-use limits per address and per conversation (crm/limits.py) are
# lifted for the benchmark's servers, or they, not the product, would be measured.
FAIR_USE_LIMITS_FOR_BENCH = {
    "SOCKETS_PER_ADDRESS": "1000000",
    "SOCKETS_PER_CONVERSATION": "1000000",
    "MESSAGES_PER_ADDRESS_PER_MINUTE": "1000000",
    "MESSAGES_PER_CONVERSATION_PER_MINUTE": "1000000",
}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    parser.add_argument("--floor-samples", type=int, default=500)
    parser.add_argument(
        "--celery-hop-samples", type=int, default=200, help="tasks timed for the Celery hop floor"
    )
    parser.add_argument("--detector-seconds", type=float, default=5.0)
    parser.add_argument("--detector-rounds", type=int, default=20)
    parser.add_argument("--handoffs", type=int, default=200)
    parser.add_argument("--replies", type=int, default=500)
    parser.add_argument("--servers", type=int, default=2, help="uvicorn processes")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker concurrency")
    parser.add_argument(
        "--worker-app",
        default="config",
        help="Celery app for the worker (an A/B, e.g. tests.bench.per_task_connection_worker)",
    )
    parser.add_argument("--load-sockets", type=int, default=500)
    parser.add_argument("--load-seconds", type=float, default=40.0)
    parser.add_argument(
        "--load-rate",
        type=float,
        default=0.05,
        help="messages per second per customer socket (0.05: one every 20 s, a customer "
        "chatting; 0.2 saturates two uvicorn processes on 2 shared cores)",
    )
    parser.add_argument(
        "--load-with-worker", action="store_true", help="keep the Celery worker during load"
    )
    parser.add_argument(
        "--ceiling-step-seconds", type=float, default=3.0, help="length of one ramp step"
    )
    parser.add_argument(
        "--ceiling-budget-seconds", type=float, default=60.0, help="time bound of one ramp"
    )
    parser.add_argument("--scale-sockets", type=int, default=5000)
    parser.add_argument("--scale-connect-seconds", type=float, default=240.0)
    parser.add_argument("--scale-idle-seconds", type=float, default=20.0)
    parser.add_argument("--scale-handoffs", type=int, default=30)
    parser.add_argument("--race-claimers", type=int, default=50)
    parser.add_argument("--race-rounds", type=int, default=100)
    parser.add_argument("--queue-sizes", default="10000,100000")
    parser.add_argument("--queue-repeats", type=int, default=20)
    parser.add_argument("--routing-agents", type=int, default=50)
    parser.add_argument("--routing-escalations", type=int, default=1000)
    parser.add_argument("--routing-capacity", type=int, default=5)
    parser.add_argument("--out", default="bench-results.json")
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="write this run into README.md's Performance section (between its bench markers)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.floor_samples = min(args.floor_samples, 200)
        args.detector_seconds = min(args.detector_seconds, 2.0)
        args.detector_rounds = min(args.detector_rounds, 3)
        args.handoffs = min(args.handoffs, 30)
        args.replies = min(args.replies, 100)
        args.load_sockets = min(args.load_sockets, 50)
        args.load_seconds = min(args.load_seconds, 10.0)
        args.ceiling_step_seconds = min(args.ceiling_step_seconds, 2.0)
        args.ceiling_budget_seconds = min(args.ceiling_budget_seconds, 20.0)
        args.scale_sockets = min(args.scale_sockets, 300)
        args.scale_idle_seconds = min(args.scale_idle_seconds, 5.0)
        args.scale_handoffs = min(args.scale_handoffs, 10)
        args.race_claimers = min(args.race_claimers, 20)
        args.race_rounds = min(args.race_rounds, 20)
        args.queue_sizes = "1000,5000"
        args.queue_repeats = min(args.queue_repeats, 5)
        args.routing_escalations = min(args.routing_escalations, 200)
        args.routing_agents = min(args.routing_agents, 20)  # 100 slots < 200: capacity reached
    args.only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(args.only) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    args.queue_sizes = [int(s) for s in args.queue_sizes.split(",") if s.strip()]
    return args


def check_environment() -> None:
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing:
        sys.exit(
            "make bench needs PostgreSQL and Redis: set "
            + " and ".join(missing)
            + " (a database and a Redis db of the benchmark's own: they are emptied), e.g.\n"
            "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/live_escalation_bench "
            "REDIS_URL=redis://127.0.0.1:6379/15 make bench"
        )
    os.environ["DATABASE_URL"] = bench_database_url(os.environ["DATABASE_URL"])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.setdefault("HTTPS_ONLY", "0")
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def bench_database_url(url: str) -> str:
    """The benchmark empties its database, so it never uses one whose name lacks "bench":
    postgres://.../live_escalation becomes postgres://.../live_escalation_bench (created)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" in name:
        return url
    return urlunsplit(parts._replace(path=f"/{name or 'live_escalation'}_bench"))


def sockets_available() -> bool:
    from config import routing

    return bool(getattr(routing, "websocket_urlpatterns", None))


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    check_environment()
    import django

    django.setup()

    from . import harness, report, world

    wanted = [b for b in BENCHMARKS if b in args.only]
    socket_benchmarks = [b for b in wanted if b in ("handoff", "message", "load")]
    has_sockets = sockets_available()
    progress = harness.Progress(len(wanted) + 1)
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": harness.machine_description(),
        "arguments": {k: v for k, v in vars(args).items()},
        "benchmarks": {},
        "notes": [],
    }
    run_started = time.monotonic()

    progress.start("prepare the benchmark database (migrate, empty)")
    world.prepare_database()
    results["versions"] = harness.versions()
    progress.done()

    floors = None
    services = None
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    try:
        for name in wanted:
            load_before = round(os.getloadavg()[0], 2)
            if name in socket_benchmarks and not has_sockets:
                progress.start(f"{name}: skipped")
                results["benchmarks"][name] = {
                    "skipped": "no WebSocket routes in config/routing.py yet"
                }
                progress.done("no consumers")
                continue
            if name in ("handoff", "message", "load", "scale") and floors is None:
                progress.note("measuring the floors first (--only floors shows them)")
                floors = _floors(args, progress, results, log_dir, silent=True)
            if name in socket_benchmarks and services is None:
                services = _start_services(args, log_dir, progress, results)
            if name == "floors":
                progress.start(
                    "floors: group_send round trip, PostgreSQL insert + commit, bare Celery hop"
                )
                floors = _floors(args, progress, results, log_dir)
                progress.done(
                    "combined p50 {p50} ms, p99 {p99} ms".format(**floors["combined"])
                    + "; Celery hop p50 {p50} ms, p99 {p99} ms".format(**floors["celery_hop"])
                )
            elif name == "detector":
                from .detector import run_detector

                progress.start("detector latency (local backend)")
                data = run_detector(
                    seconds=args.detector_seconds, rounds=args.detector_rounds, progress=progress
                )
                results["benchmarks"]["detector"] = data
                progress.done(_p(data.get("latency", {})))
            elif name in ("handoff", "message", "load"):
                from . import sockets

                if name == "load" and not args.load_with_worker:
                    services.stop_worker()
                    results["notes"].append(
                        "load: the Celery worker was stopped during the load run (analysis "
                        "tasks queue up in Redis); on a 2-core box it would compete with the "
                        "relay for the same cores. --load-with-worker keeps it running."
                    )

                progress.start(
                    {
                        "handoff": f"handoff latency ({args.handoffs} handoffs)",
                        "message": f"agent reply latency ({args.replies} replies)",
                        "load": f"load: {args.load_sockets} sockets for {args.load_seconds:.0f} s",
                    }[name]
                )
                data = getattr(sockets, f"run_{name}")(
                    args=args, ports=services.ports, progress=progress, floors=floors
                )
                results["benchmarks"][name] = data
                progress.done(data.get("headline", ""))
            elif name in ("ceiling", "scale"):
                # Each starts the servers it measures; the shared ones would share the cores.
                if services is not None:
                    services.stop()
                    services = None
                own = _bench_services(log_dir)
                if name == "ceiling":
                    from .ceiling import run_ceiling

                    progress.start("throughput ceiling: relay and product on 1 and 2 processes")
                    data = run_ceiling(args=args, services=own, progress=progress)
                else:
                    from .scale import run_scale

                    progress.start(f"sockets at scale: {args.scale_sockets} on 2 processes")
                    data = run_scale(args=args, services=own, progress=progress, floors=floors)
                results["benchmarks"][name] = data
                progress.done(data.get("headline", ""))
            elif name == "race":
                from .race import run_race

                progress.start(
                    f"take-over race ({args.race_claimers} claimers x {args.race_rounds} rounds)"
                )
                data = run_race(
                    claimers=args.race_claimers, rounds=args.race_rounds, progress=progress
                )
                results["benchmarks"]["race"] = data
                progress.done(
                    f"{data['rounds_with_exactly_one_winner']}/{args.race_rounds} "
                    "rounds with one winner"
                )
            elif name == "queue":
                from .queue_scale import run_queue_scale

                progress.start(f"queue at scale ({', '.join(map(str, args.queue_sizes))})")
                data = run_queue_scale(
                    sizes=args.queue_sizes, repeats=args.queue_repeats, progress=progress
                )
                results["benchmarks"]["queue"] = data
                progress.done()
            elif name == "routing":
                from .routing import run_routing

                progress.start(
                    f"routing ({args.routing_agents} agents, "
                    f"{args.routing_escalations} escalations)"
                )
                data = run_routing(
                    agents=args.routing_agents,
                    escalations=args.routing_escalations,
                    capacity=args.routing_capacity,
                    producers=4,
                    progress=progress,
                )
                results["benchmarks"]["routing"] = data
                progress.done(data["headline"])
            if isinstance(results["benchmarks"].get(name), dict):
                # The machine is shared: each figure carries the load it was taken under.
                results["benchmarks"][name]["load_average_1min"] = [
                    load_before,
                    round(os.getloadavg()[0], 2),
                ]
            # Written after every benchmark, so a run cut short keeps what it measured.
            _write_results(results, Path(args.out))
    finally:
        if services is not None:
            services.stop()
        results["logs"] = str(log_dir)
    results["duration_seconds"] = round(time.monotonic() - run_started, 1)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out)
    _write_results(results, out)
    chart = report.write_chart(results, out.with_name(out.stem + ".svg"))
    print()
    print(report.render(results))
    print(
        f"\nresults: {out}" + (f"   chart: {chart}" if chart else "") + f"   server logs: {log_dir}"
    )
    if args.update_readme:
        readme = Path(__file__).resolve().parents[2] / "README.md"
        updated = report.update_readme(results, readme)
        print(f"README.md: {'updated' if updated else 'no bench markers found, not changed'}")
    return 0


def _write_results(results: dict, out: Path) -> None:
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")


def _p(summary: dict) -> str:
    if not summary:
        return ""
    return f"p50 {summary.get('p50')} ms, p99 {summary.get('p99')} ms"


def _floors(args, progress, results, log_dir, *, silent=False):
    from .floors import measure_floors

    class Quiet:
        def count(self, *a, **k):
            pass

    floors = measure_floors(
        args.floor_samples,
        Quiet() if silent else progress,
        log_dir=log_dir,
        celery_hops=args.celery_hop_samples,
        concurrency=args.workers,  # as the product's worker in this run
    )
    results["benchmarks"]["floors"] = floors
    return floors


class _RunningServices:
    def __init__(self, services, ports):
        self.services = services
        self.ports = ports

    def stop(self):
        self.services.stop()

    def stop_worker(self):
        from .harness import stop_process

        if self.services.worker is not None:
            stop_process(self.services.worker)
            self.services.worker = None


def _bench_services(log_dir):
    from .harness import Services

    env = dict(os.environ)
    env["SOCKET_RATE_LIMIT"] = SOCKET_RATE_LIMIT_FOR_BENCH
    env.update(FAIR_USE_LIMITS_FOR_BENCH)
    env["DEBUG"] = "0"
    return Services(env=env, log_dir=log_dir)


def _start_services(args, log_dir, progress, results):
    services = _bench_services(log_dir)
    progress.note(f"starting {args.servers} uvicorn process(es) and a Celery worker")
    try:
        ports = services.start_servers(args.servers)
        services.start_worker(concurrency=args.workers, app=args.worker_app)
    except Exception:
        services.stop()
        raise
    if args.worker_app != "config":
        results["notes"].append(f"EXPERIMENT: the Celery worker ran -A {args.worker_app}")
    results["notes"].append(
        f"{args.servers} uvicorn process(es), Celery worker concurrency {args.workers}; "
        f"SOCKET_RATE_LIMIT raised to {SOCKET_RATE_LIMIT_FOR_BENCH} for the benchmark servers"
    )
    return _RunningServices(services, ports)


if __name__ == "__main__":
    sys.exit(main())
