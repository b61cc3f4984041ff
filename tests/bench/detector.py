"""Detector latency per message, local backend.

The detection engineer's ``tests/bench/bench_detector.py`` is used when it offers a callable
(see ``_their_function``); otherwise ``escalation.detection.detect`` is timed here on the labelled
conversations in tests/data: one call per conversation (the decision for its last customer turn),
cycled for a bounded time.
"""

from __future__ import annotations

import importlib
import json
import time

from .harness import ROOT, latency_summary

DATA = ROOT / "tests" / "data" / "escalation_conversations.jsonl"
CANDIDATE_NAMES = ("run_benchmark",)


def _their_function():
    try:
        module = importlib.import_module("tests.bench.bench_detector")
    except ImportError:
        return None
    for name in CANDIDATE_NAMES:
        fn = getattr(module, name, None)
        if callable(fn):
            return fn
    return None


def _conversations():
    from escalation.detection import Turn

    out = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(
                [
                    Turn(role=t["role"], text=t["text"], confidence=t.get("confidence"))
                    for t in row["turns"]
                ]
            )
    return out


def measure_detect(*, seconds: float, progress) -> dict:
    from escalation.detection import DetectorSettings, detect

    from .report import quantile_ladder

    conversations = _conversations()
    settings = DetectorSettings(backend="local")
    started = time.perf_counter()
    detect(conversations[0], settings)  # loads the model: reported apart, not in the percentiles
    cold_ms = (time.perf_counter() - started) * 1000
    samples = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline or i < len(conversations):
        turns = conversations[i % len(conversations)]
        t0 = time.perf_counter()
        detect(turns, settings)
        samples.append((time.perf_counter() - t0) * 1000)
        i += 1
        elapsed = min(seconds, time.perf_counter() - (deadline - seconds))
        progress.count(int(elapsed * 10), int(seconds * 10), f"({i} calls)")
    return {
        "source": "escalation.detection.detect timed by tests/bench/detector.py",
        "conversations": len(conversations),
        "first_call_ms": round(cold_ms, 1),
        "latency": latency_summary(samples),
        "quantiles": quantile_ladder(samples),
    }


def run_detector(*, seconds: float, rounds: int, progress) -> dict:
    """The detection engineer's ``run_benchmark`` when present (one core, wall and CPU time),
    mapped to this harness's figures; else our own timing of ``detect``."""
    theirs = _their_function()
    if theirs is not None:
        lines: list[str] = []

        def relay(line: str) -> None:
            lines.append(line)
            if line.startswith("["):  # their counted steps: "[5/20] rounds"
                done, of = line[1:].split("]")[0].split("/")
                progress.count(int(done), int(of), "rounds")

        # A round is ~600 conversations × 3 calls with the encoder (about a minute): two suffice.
        figures = theirs(rounds=max(1, min(rounds, 2)), progress=relay)
        # The headline is a new message in steady state (earlier turns already embedded).
        wall, cpu = figures["wall.new_message"], figures["cpu.new_message"]
        floor = figures["wall.floor"]
        return {
            "source": f"tests/bench/bench_detector.py:{theirs.__name__} (pinned to one core)",
            "latency": {
                "count": wall["messages"],
                "p50": wall["p50_ms"],
                "p99": wall["p99_ms"],
                "max": wall["max_ms"],
            },
            "cpu_latency": {"p50": cpu["p50_ms"], "p99": cpu["p99_ms"]},
            "floor_latency": {"p50": floor["p50_ms"], "p99": floor["p99_ms"]},
            "rss_mb": figures.get("rss_mb_loaded"),
            "first_call_ms": figures.get("cold_start_ms"),
            "figures": figures,
            "summary": [line for line in lines if not line.startswith("[")],
        }
    return measure_detect(seconds=seconds, progress=progress)
