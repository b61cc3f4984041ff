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
