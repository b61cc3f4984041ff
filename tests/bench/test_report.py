"""The benchmark's arithmetic and its summary: `make bench` is not part of `make test`, so these
fast checks keep its table and chart from breaking unnoticed."""

from tests.bench.harness import format_table, latency_summary, percentile
from tests.bench.report import quantile_ladder, render, write_chart


def test_percentile_interpolates_between_ranks():
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0.5) == 25.0
    assert percentile(values, 0.0) == 10.0
    assert percentile(values, 1.0) == 40.0
    assert percentile([], 0.5) is None


def test_latency_summary_and_ladder():
    samples = [float(n) for n in range(1, 101)]
    summary = latency_summary(samples)
    assert summary["count"] == 100
    assert summary["p50"] == 50.5
    assert summary["p99"] == 99.01
    ladder = quantile_ladder(samples)
    assert len(ladder) == 99 and ladder == sorted(ladder)


def test_table_pads_columns():
    table = format_table([["a", "long value"]], ["figure", "v"])
    lines = table.splitlines()
    assert len({len(line) for line in lines}) == 1  # every line the same width
    assert "long value" in table


def results(**benchmarks):
    return {
        "started_at": "2026-01-01T00:00:00+00:00",
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "memory_gb": 4,
            "load_average_at_start": [0.1, 0.1, 0.1],
            "load_average_at_end": [0.1, 0.1, 0.1],
        },
        "benchmarks": benchmarks,
        "notes": [],
        "duration_seconds": 1.0,
    }


FLOORS = {
    "group_send_round_trip": {"p50": 1.0, "p99": 2.0},
    "pg_insert_commit": {"p50": 1.0, "p99": 2.0},
    "combined": {"p50": 2.0, "p95": 3.0, "p99": 4.0},
    "quantiles": [2.0] * 99,
}


def test_render_compares_with_the_floor_and_the_targets():
    handoff = {
        "latency": {"count": 200, "p50": 60.0, "p95": 160.0, "p99": 170.0},
        "quantiles": [60.0] * 99,
    }
    race = {
        "claimers": 50,
        "rounds": 2,
        "winners_per_round": {"1": 1, "2": 1},
        "ok": False,
    }
    text = render(results(floors=FLOORS, handoff=handoff, race=race))
    handoff_p95 = next(line for line in text.splitlines() if "queue event p95" in line)
    assert "160.0 ms" in handoff_p95 and "53.3x" in handoff_p95 and "NO" in handoff_p95
    race_line = next(line for line in text.splitlines() if "take-over race" in line)
    assert "2->1 rounds" in race_line and "NO" in race_line


def test_render_says_what_was_skipped_or_missing():
    queue = {
        "sizes": {
            "10": {
                "selector": {"time": {"p50": 1.0, "p95": 2.0}, "queries": [1]},
                "api": {"path": "/api/v1/escalations/", "missing": True},
                "screen": {"path": "/crm/", "missing": True},
            }
        },
        "query_count_constant": {"selector": True, "api": None, "screen": None},
    }
    text = render(results(handoff={"skipped": "no WebSocket routes"}, queue=queue))
    assert "skipped: no WebSocket routes" in text
    assert "/api/v1/escalations/ not built yet" in text


def test_chart_draws_one_curve_per_latency(tmp_path):
    handoff = {"latency": {}, "quantiles": [float(q) for q in range(1, 100)]}
    path = write_chart(results(floors=FLOORS, handoff=handoff), tmp_path / "chart.svg")
    svg = path.read_text()
    assert svg.count("<polyline") == 2  # the handoff and the floor
    assert write_chart(results(), tmp_path / "none.svg") is None


def test_the_benchmark_never_empties_a_database_without_bench_in_its_name():
    from tests.bench.__main__ import bench_database_url

    assert (
        bench_database_url("postgres://postgres@127.0.0.1:5432/live_escalation")
        == "postgres://postgres@127.0.0.1:5432/live_escalation_bench"
    )
    assert bench_database_url("postgres://p@h/le_bench") == "postgres://p@h/le_bench"


def test_the_readme_block_is_replaced_with_the_run_and_its_load(tmp_path):
    from tests.bench.report import README_END, README_START, update_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n\n{README_START}\nold figures\n{README_END}\n\n## Next\n")
    run = results(
        floors={
            "group_send_round_trip": {"p50": 1.0, "p99": 2.0},
            "pg_insert_commit": {"p50": 0.5, "p99": 0.9},
            "combined": {"p50": 1.5, "p95": 2.5, "p99": 3.0},
            "load_average_1min": [0.4, 0.6],
        }
    )
    assert update_readme(run, readme)
    text = readme.read_text()
    assert "old figures" not in text and text.endswith("## Next\n")
    assert "| floor: combined | p50 1.5 ms, p95 2.5 ms, p99 3.0 ms |" in text
    assert "floors 0.4→0.6" in text and "[0.1, 0.1, 0.1] at the start" in text
    plain = tmp_path / "plain.md"
    plain.write_text("no markers")
    assert not update_readme(run, plain) and plain.read_text() == "no markers"


FLOORS_WITH_HOP = {
    "group_send_round_trip": {"p50": 1.0, "p95": 1.5, "p99": 2.0},
    "pg_insert_commit": {"p50": 0.5, "p95": 1.0, "p99": 2.0},
    "celery_hop": {"p50": 2.0, "p95": 3.0, "p99": 4.0, "worker": {"concurrency": 2}},
    "combined": {"p50": 1.5, "p95": 2.5, "p99": 4.0},
}
MEASURED_STAGES = {
    "socket -> message stored": {"count": 50, "p50": 1.0, "p95": 2.0},
    "stored -> analysis starts (commit, Celery queue, worker)": {
        "count": 50,
        "p50": 12.0,
        "p95": 14.0,
    },
    "detection": {"count": 50, "p50": 0.6, "p95": 0.9},
    "analysis -> escalation row": {"count": 50, "p50": 1.4, "p95": 4.0},
    "escalation row -> agent socket (handoff writes, commit, group_send)": {
        "count": 50,
        "p50": 15.0,
        "p95": 20.0,
    },
}


def test_each_handoff_stage_is_held_against_its_own_floor():
    from tests.bench.sockets import with_stage_floors

    stages = with_stage_floors(MEASURED_STAGES, FLOORS_WITH_HOP)
    hop = stages["stored -> analysis starts (commit, Celery queue, worker)"]
    assert hop["floor"] == {"of": "PG insert+commit + bare Celery hop", "p50": 2.5, "p95": 4.0}
    assert hop["ratio"] == {"p50": 4.8, "p95": 3.5} and hop["met"] is False
    socket = stages["escalation row -> agent socket (handoff writes, commit, group_send)"]
    assert socket["floor"]["p50"] == 1.5 and socket["met"] is False
    assert stages["socket -> message stored"]["met"] is True  # 2x / 2x
    # within 3x at p50 (2.8x) but not at p95 (4x): both must be
    assert stages["analysis -> escalation row"]["met"] is False
    assert stages["detection"]["floor"] is None
    # a floor not measured is said, not taken as zero
    partial = with_stage_floors(MEASURED_STAGES, {"pg_insert_commit": {"p50": 1.0, "p95": 1.0}})
    assert partial["stored -> analysis starts (commit, Celery queue, worker)"]["floor"] is None
    assert (
        "celery_hop"
        in partial["stored -> analysis starts (commit, Celery queue, worker)"]["floor_note"]
    )


def test_the_table_prints_each_stage_beside_its_floor_and_the_handoff_against_10x():
    from tests.bench.sockets import handoff_without_detection, with_stage_floors

    latency = {"count": 50, "p50": 20.0, "p95": 24.0, "p99": 30.0}
    handoff = {
        "latency": latency,
        "quantiles": [20.0] * 99,
        "stages": with_stage_floors(MEASURED_STAGES, FLOORS_WITH_HOP),
        "without_detection": handoff_without_detection(latency, FLOORS_WITH_HOP),
    }
    lines = render(results(floors=FLOORS_WITH_HOP, handoff=handoff)).splitlines()

    def line(text):
        return next(row for row in lines if text in row)

    assert "p50 2.0 ms, p95 3.0 ms, p99 4.0 ms" in line("floor: bare Celery hop")
    stage = line("stored -> analysis starts")
    assert "PG insert+commit + bare Celery hop: p50 2.5 ms, p95 4.0 ms" in stage
    assert "4.8x / 3.5x" in stage and "<= 3x floor" in stage and "| NO" in stage
    assert "| yes" in line("socket -> message stored")
    assert "<= 3x" not in line("stage: detection")
    whole = line("handoff without detection p95")
    assert "24.0 ms" in whole and "9.6x" in whole and "<= 10x combined floor" in whole
    assert "| yes" in whole


def test_a_run_from_before_the_stage_floors_still_renders():
    handoff = {
        "latency": {"count": 1, "p50": 1.0, "p95": 1.0, "p99": 1.0},
        "stages": MEASURED_STAGES,
    }
    text = render(results(floors=FLOORS, handoff=handoff))
    assert "handoff stage: detection" in text and "handoff without detection" not in text


def test_the_bare_celery_worker_has_the_products_options_and_no_django():
    import subprocess
    import sys

    from config.celery import app as product
    from tests.bench.celery_floor import HOP_TASK, QUEUE, make_app
    from tests.bench.floors import product_celery_options

    options = product_celery_options()
    bare = make_app(options)
    for key in ("task_acks_late", "worker_prefetch_multiplier", "broker_transport_options"):
        assert bare.conf[key] == product.conf[key]
    assert bare.conf.task_default_queue == QUEUE and HOP_TASK in bare.tasks
    # The worker imports the module alone: no Django set-up, settings, models or database, and
    # none of the product (kombu's JSON imports django.utils when Django is installed: not those).
    code = (
        "import json, os, sys; os.environ['BENCH_CELERY_FLOOR_CONF'] = json.dumps("
        "{'broker_url': 'memory://'}); import tests.bench.celery_floor as m; "
        "m.app.loader.import_default_modules(); "
        "print(sorted(n for n in sys.modules if n in ('django.conf', 'django.apps', 'django.db', "
        "'celery.fixups.django') or n.split('.')[0] in ('config', 'crm', 'escalation')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
