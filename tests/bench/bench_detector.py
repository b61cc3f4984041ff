"""Benchmark: the local detector's cost per customer message, on one core.

    python -m tests.bench.bench_detector [--rounds 20]

Each measurement is one ``detect`` call — everything the Celery task pays per message: the
classifiers over the latest message and the earlier customer turns, VADER, the patterns, the loop
check over the history, the policy and the summary. Inputs: the labelled conversations in
tests/data, plus long synthetic ones (30 turns, the context the pipeline passes). Not a test:
nothing is asserted; the target is p99 ≤ 10 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

DATASET = Path(__file__).resolve().parent.parent / "data" / "escalation_conversations.jsonl"


def _long_conversations(turns_cls) -> list[list]:
    customer_lines = [
        "hi, my order 44120 hasn't arrived and the tracking page shows nothing since Monday",
        "I already checked with my neighbours and the parcel locker, nothing there",
        "the order was for my daughter's birthday on Saturday, I paid 89.90 for express",
        "ok but can you tell me what actually happened to it, the courier says it was delivered",
        "this is getting really frustrating, I've been chatting for twenty minutes",
    ]
    assistant_line = "I'm sorry! Let me check the latest tracking events for order 44120."
    conversations = []
    for variant in range(5):
        turns = []
        for i in range(15):
            turns.append(turns_cls("customer", customer_lines[(i + variant) % 5]))
            turns.append(turns_cls("assistant", assistant_line, 0.5 + (i % 4) / 10))
        turns.append(turns_cls("customer", customer_lines[variant]))
        conversations.append(turns[-30:])
    return conversations


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def run_benchmark(rounds: int = 20, progress=None) -> dict:
    """Measure on one core (the process's affinity is restored afterwards); return the figures.
    ``progress`` receives the counted steps and the summary lines (silent by default)."""
    progress = progress or (lambda line: None)
    pinned = hasattr(os, "sched_setaffinity")
    if pinned:
        previous = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {sorted(previous)[0]})
    try:
        return _measure(rounds, progress)
    finally:
        if pinned:
            os.sched_setaffinity(0, previous)


def _measure(rounds: int, progress) -> dict:
    started = time.perf_counter()
    from escalation.detection import Turn, detect
    from escalation.detection.evaluation import read_conversations
    from escalation.detection.features import load_models

    load_models()
    detect([Turn("customer", "warm up")])
    cold_ms = (time.perf_counter() - started) * 1000

    with DATASET.open(encoding="utf-8") as handle:
        labelled = [c.turns for c in read_conversations(handle)]
    long = _long_conversations(Turn)
    # Wall time, and CPU time of this thread: on a shared machine the wall-clock tail includes
    # waiting for the core; the CPU time is what the message costs.
    timings: dict[str, list[float]] = {"labelled": [], "30-turn": []}
    cpu: dict[str, list[float]] = {"labelled": [], "30-turn": []}
    for step in range(1, rounds + 1):
        for name, conversations in (("labelled", labelled), ("30-turn", long)):
            for turns in conversations:
                c0, t0 = time.thread_time(), time.perf_counter()
                detect(turns)
                timings[name].append((time.perf_counter() - t0) * 1000)
                cpu[name].append((time.thread_time() - c0) * 1000)
        if step % 5 == 0 or step == rounds:
            progress(f"[{step}/{rounds}] rounds")

    results: dict = {"cold_start_ms": round(cold_ms, 1)}
    for clock, table in (("wall", timings), ("cpu", cpu)):
        everything = table["labelled"] + table["30-turn"]
        for name, values in (*table.items(), ("all", everything)):
            ordered = sorted(values)
            results[f"{clock}.{name}"] = {
                "messages": len(ordered),
                "p50_ms": round(statistics.median(ordered), 3),
                "p99_ms": round(percentile(ordered, 0.99), 3),
                "max_ms": round(ordered[-1], 3),
            }
    for clock in ("wall", "cpu"):
        a, lab, lng = (results[f"{clock}.{n}"] for n in ("all", "labelled", "30-turn"))
        progress(
            f"Summary ({clock}): {a['messages']} messages on one core: p50 {a['p50_ms']:.2f} ms, "
            f"p99 {a['p99_ms']:.2f} ms (labelled p50 {lab['p50_ms']:.2f} / p99 "
            f"{lab['p99_ms']:.2f} ms; 30-turn p50 {lng['p50_ms']:.2f} / p99 {lng['p99_ms']:.2f} ms)"
        )
    progress(f"Model load + first call {cold_ms:.0f} ms; target p99 ≤ 10 ms per message.")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="passes over the inputs")
    args = parser.parse_args()
    results = run_benchmark(args.rounds, progress=lambda line: print(line, flush=True))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
