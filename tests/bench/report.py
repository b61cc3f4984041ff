"""The summary table printed at the end of `make bench`, and the SVG chart of latency curves."""

from __future__ import annotations

import html
import math
from pathlib import Path

from .harness import format_table, ms, percentile

HANDOFF_P95_TARGET_MS = 150.0
REPLY_P99_TARGET_MS = 250.0


def quantile_ladder(samples_ms: list[float]) -> list[float]:
    """Latency at percentiles 1..99 (the chart draws these)."""
    if not samples_ms:
        return []
    ordered = sorted(samples_ms)
    return [round(percentile(ordered, q / 100), 3) for q in range(1, 100)]


def _ratio(value, floor):
    if value is None or not floor:
        return "-"
    return f"{value / floor:.1f}x"


def _p50_p95_p99(s: dict) -> str:
    return f"p50 {ms(s.get('p50'))}, p95 {ms(s.get('p95'))}, p99 {ms(s.get('p99'))}"


def _met(ok) -> str:
    return {True: "yes", False: "NO", None: "-"}[ok]


def render(results: dict) -> str:
    rows = table_rows(results)
    table = format_table(rows, HEADERS)
    return summary_line(results) + "\n" + table + _notes(results)


def render_markdown(results: dict) -> str:
    """The README's "Latest figures": the same rows as a Markdown table, and when and under
    what load the run was taken."""
    b = results["benchmarks"]
    machine = results["machine"]
    versions = results.get("versions") or {}
    loads = [
        f"{name} {data['load_average_1min'][0]}→{data['load_average_1min'][1]}"
        for name, data in b.items()
        if isinstance(data, dict) and data.get("load_average_1min")
    ]
    start, end = machine["load_average_at_start"], machine.get("load_average_at_end")
    lines = [
        f"Run of {results['started_at'].replace('T', ' ')[:16]} UTC, `make bench` in "
        f"{results.get('duration_seconds')} s, on {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gb']} GB; PostgreSQL {versions.get('postgresql')}, Redis "
        f"{versions.get('redis-server')}, Python {machine.get('python')}, Django "
        f"{versions.get('Django')}, uvicorn {versions.get('uvicorn')}, Celery "
        f"{versions.get('celery')}. Load average (1/5/15 min) {start} at the start and {end} at "
        "the end"
        + (f"; 1-min load before→after each benchmark: {', '.join(loads)}." if loads else ".")
        + f" Benchmarks in this run: {', '.join(b) or 'none'}.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    for row in table_rows(results):
        cells = [c.replace("|", "/") for c in row] + [""] * (len(HEADERS) - len(row))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *[f"- {note}" for note in results.get("notes", [])]]
    return "\n".join(lines).rstrip() + "\n"


README_START = "<!-- bench:latest:start -->"
README_END = "<!-- bench:latest:end -->"


def update_readme(results: dict, readme: Path) -> bool:
    """Replace the block between the README's markers with this run; False without markers."""
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _old, tail = rest.split(README_END, 1)
    readme.write_text(
        head + README_START + "\n" + render_markdown(results) + README_END + tail,
        encoding="utf-8",
    )
    return True


HEADERS = ["figure", "measured", "floor", "ratio", "target", "met"]


def summary_line(results: dict) -> str:
    machine = results["machine"]
    return (
        f"Live Escalation benchmarks, {results['started_at']} on {machine['cpu']} "
        f"({machine['cores']} cores, {machine['memory_gb']} GB), load average at start "
        f"{machine['load_average_at_start']}, at end {machine.get('load_average_at_end')}, "
        f"took {results.get('duration_seconds')} s"
    )


def _notes(results: dict) -> str:
    b = results["benchmarks"]
    loads = [
        f"{name} {data['load_average_1min'][0]} -> {data['load_average_1min'][1]}"
        for name, data in b.items()
        if isinstance(data, dict) and data.get("load_average_1min")
    ]
    notes = [
        *(["load average (1 min) before -> after each: " + "; ".join(loads)] if loads else []),
        *results.get("notes", []),
    ]
    return "".join(f"\nnote: {n}" for n in notes)


def table_rows(results: dict) -> list[list[str]]:
    b = results["benchmarks"]
    rows: list[list[str]] = []
    floors = b.get("floors") or {}
    combined = floors.get("combined") or {}
    layer = floors.get("group_send_round_trip") or {}
    pg = floors.get("pg_insert_commit") or {}
    hop = floors.get("celery_hop") or {}
    if floors:
        for label, s in (
            ("floor: group_send round trip", layer),
            ("floor: PG insert+commit", pg),
            ("floor: bare Celery hop (publish -> task body in a pool process)", hop),
        ):
            if not s:
                continue
            rows.append([label, _p50_p95_p99(s), "", "", "", ""])
        rows.append(["floor: combined", _p50_p95_p99(combined), "", "", "", ""])

    det = b.get("detector")
    if det and "latency" in det:
        s = det["latency"]
        cpu = det.get("cpu_latency")
        floor = det.get("floor_latency")
        # Encoder included; a new message in steady state (earlier turns already embedded).
        rows.append(
            [
                "detector (local, encoder included), wall time per new message",
                f"p50 {ms(s['p50'])}, p99 {ms(s['p99'])}",
                f"encoder alone p50 {ms(floor['p50'])}, p99 {ms(floor['p99'])}" if floor else "-",
                "-",
                "p50 <= 15 ms, p99 <= 50 ms",
                _met(s["p50"] is not None and s["p50"] <= 15 and s["p99"] <= 50),
            ]
        )
        if cpu:
            rows.append(
                [
                    "detector (local), CPU time per new message",
                    f"p50 {ms(cpu['p50'])}, p99 {ms(cpu['p99'])}",
                    "-",
                    "-",
                    "-",
                    "-",
                ]
            )
        if det.get("rss_mb"):
            rows.append(
                ["detector worker, resident memory with the model", f"{det['rss_mb']} MB"]
                + ["-"] * 4
            )

    for key, label, quantiles, target_q, target in (
        (
            "handoff",
            "handoff: widget -> agent queue event",
            ("p50", "p95", "p99"),
            "p95",
            HANDOFF_P95_TARGET_MS,
        ),
        ("message", "agent reply -> customer socket", ("p50", "p99"), "p99", REPLY_P99_TARGET_MS),
    ):
        data = b.get(key)
        if not data:
            continue
        if data.get("skipped"):
            rows.append([label, "skipped: " + data["skipped"], "", "", "", ""])
            continue
        s = data["latency"]
        for q in quantiles:
            ok = None
            target_text = "-"
            if q == target_q:
                ok = s[q] is not None and s[q] <= target
                target_text = f"<= {target:.0f} ms"
            rows.append(
                [
                    f"{label} {q} (n={s['count']})",
                    ms(s[q]),
                    ms(combined.get(q)),
                    _ratio(s[q], combined.get(q)),
                    target_text,
                    _met(ok),
                ]
            )

    handoff = b.get("handoff") or {}
    whole = handoff.get("without_detection")
    if whole:
        rows.append(
            [
                "handoff without detection p95 (detection left in: a cached sentence)",
                ms(whole["p95"]),
                f"combined p95 {ms(whole['combined_floor_p95'])}",
                _ratio(whole["p95"], whole["combined_floor_p95"]),
                f"<= {whole['target_ratio']:g}x combined floor",
                _met(whole["met"]),
            ]
        )
    for stage, summary in (handoff.get("stages") or {}).items():
        measured = f"p50 {ms(summary['p50'])}, p95 {ms(summary['p95'])}"
        floor = summary.get("floor")
        if floor:
            rows.append(
                [
                    f"  handoff stage: {stage}",
                    measured,
                    f"{floor['of']}: p50 {ms(floor['p50'])}, p95 {ms(floor['p95'])}",
                    f"{_ratio(summary['p50'], floor['p50'])} / "
                    f"{_ratio(summary['p95'], floor['p95'])}",
                    f"<= {summary['target_ratio']:g}x floor (p50 and p95)",
                    _met(summary["met"]),
                ]
            )
        elif summary.get("floor_note"):  # detection (its own row above), or a floor missing
            rows.append([f"  handoff stage: {stage}", measured, summary["floor_note"]] + ["-"] * 3)
        else:  # a run from before the stage floors
            rows.append([f"  handoff stage: {stage}", measured, "", "", "", ""])

    load = b.get("load")
    if load:
        if load.get("skipped"):
            rows.append(["load", "skipped: " + load["skipped"], "", "", "", ""])
        else:
            s = load["delivery_latency"]
            rows.append(
                [
                    f"load: {load['sockets']} sockets x {load['rate_per_socket']}/s, "
                    f"{load['seconds']:.0f} s",
                    f"{load['delivered_per_second']:.0f} delivered/s "
                    f"({load['sent_per_second']:.0f} sent/s)",
                    "",
                    "",
                    "",
                    "",
                ]
            )
            ack = load.get("stored_ack_latency") or {}
            rows.append(
                [
                    "load: stored + acknowledged to sender p50 / p99",
                    f"{ms(ack.get('p50'))} / {ms(ack.get('p99'))}",
                    ms(combined.get("p99")),
                    _ratio(ack.get("p99"), combined.get("p99")),
                    "",
                    "",
                ]
            )
            rows.append(
                [
                    "load: delivery to watching agent p50 / p99",
                    f"{ms(s['p50'])} / {ms(s['p99'])}",
                    ms(combined.get("p99")),
                    _ratio(s["p99"], combined.get("p99")),
                    "",
                    "",
                ]
            )
            rows.append(
                [
                    "load: sent / stored / delivered",
                    f"{load['sent']} / {load['stored']} / {load['delivered']}",
                    "",
                    "",
                    "0 lost in store",
                    _met(load["lost_in_store"] == 0),
                ]
            )

    ceiling = b.get("ceiling")
    if ceiling:
        for processes, figures in ceiling["processes"].items():
            relay, product = figures["relay"], figures["product"]
            rows.append(
                [
                    f"ceiling, {processes} process(es): product (store + deliver), p99 <= "
                    f"{ceiling['p99_limit_ms']:.0f} ms",
                    f"{product['ceiling_per_second']:.0f} msg/s (then: {product['limited_by']})",
                    f"relay {relay['ceiling_per_second']:.0f} msg/s",
                    "-"
                    if figures["ratio_product_to_relay"] is None
                    else f"{figures['ratio_product_to_relay']:.2f}",
                    ">= 0.5 of relay",
                    _met(
                        None
                        if figures["ratio_product_to_relay"] is None
                        else figures["ratio_product_to_relay"] >= 0.5
                    ),
                ]
            )

    scale = b.get("scale")
    if scale:
        idle = scale["idle_cpu_percent_of_a_core"]
        servers_idle = sum(v for k, v in idle.items() if k.startswith("uvicorn"))
        rows.append(
            [
                f"{scale['sockets']:,} customer sockets on 2 processes",
                f"{scale['connected']:,} connected in {scale['connect_seconds']} s; "
                f"{scale['server_kb_per_socket']} KB/socket (servers), "
                f"{scale['redis_kb_per_socket']} KB (Redis)",
                "",
                "",
                "",
                "",
            ]
        )
        rows.append(
            [
                "  idle CPU with them connected (both servers)",
                f"{servers_idle:.1f}% of one core",
                "",
                "",
                "",
                "",
            ]
        )
        s = scale["handoff_latency"]
        floor = scale["floor"]
        rows.append(
            [
                f"  handoff while connected p50 / p95 (n={s['count']})",
                f"{ms(s['p50'])} / {ms(s['p95'])}",
                f"{ms(floor.get('p50'))} / {ms(floor.get('p95'))}",
                f"{_ratio(s['p50'], floor.get('p50'))} / {_ratio(s['p95'], floor.get('p95'))}",
                f"p95 <= {HANDOFF_P95_TARGET_MS:.0f} ms",
                _met(s["p95"] is not None and s["p95"] <= HANDOFF_P95_TARGET_MS),
            ]
        )

    race = b.get("race")
    if race:
        rows.append(
            [
                f"take-over race: {race['claimers']} claimers x {race['rounds']} rounds",
                "winners per round: "
                + ", ".join(f"{k}->{v} rounds" for k, v in race["winners_per_round"].items()),
                "",
                "",
                "exactly 1 every round",
                _met(race["ok"]),
            ]
        )

    routing = b.get("routing")
    if routing:
        a, f, arrival = routing["assignment_ms"], routing["floor_ms"], routing["on_arrival_ms"]
        rows.append(
            [
                f"routing: {routing['agents']} agents x {routing['escalations']} escalations, "
                "escalation -> assignment",
                f"p50 {ms(a['p50'])}, p95 {ms(a['p95'])} "
                f"({routing['assigned_on_arrival']} within 1 s: p50 "
                f"{ms(arrival['p50'])}, p95 {ms(arrival['p95'])})",
                f"{ms(f['p50'])} / {ms(f['p95'])}",
                f"{routing['ratio_p50']}x" if routing["ratio_p50"] else "",
                "all assigned, capacity reached, 0 over it, 0 double",
                _met(routing["ok"]),
            ]
        )

    queue = b.get("queue")
    if queue:
        for size, surfaces in queue["sizes"].items():
            for surface in ("selector", "api", "screen"):
                data = surfaces.get(surface) or {}
                label = f"queue {int(size):,} queued: {surface}"
                if data.get("missing"):
                    rows.append([label, f"{data['path']} not built yet", "", "", "", ""])
                    continue
                status = f", HTTP {data['status']}" if "status" in data else ""
                rows.append(
                    [
                        label,
                        f"p50 {ms(data['time']['p50'])}, p95 {ms(data['time']['p95'])}, "
                        f"queries {'/'.join(map(str, data['queries']))}{status}",
                        "",
                        "",
                        "constant queries",
                        _met(queue["query_count_constant"].get(surface)),
                    ]
                )

    return rows


def write_chart(results: dict, path: Path) -> Path | None:
    """Percentile curves (log scale) of each latency measured, with the floor for reference."""
    series = []
    b = results["benchmarks"]
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for key, label in (
        ("handoff", "handoff (widget -> agent queue event)"),
        ("message", "agent reply -> customer"),
        ("load", "delivery under load"),
        ("detector", "detector per message"),
    ):
        ladder = (b.get(key) or {}).get("quantiles")
        if ladder:
            series.append((label, ladder))
    floor = (b.get("floors") or {}).get("quantiles")
    if floor:
        series.append(("floor: group_send + PG commit", floor))
    if not series:
        return None
    width, height, left, right, top, bottom = 760, 420, 70, 250, 40, 50
    values = [v for _label, ladder in series for v in ladder if v > 0]
    low = 10 ** math.floor(math.log10(min(values)))
    high = 10 ** math.ceil(math.log10(max(values)))

    def x(q):  # q = 1..99
        return left + (q - 1) / 98 * (width - left - right)

    def y(v):
        v = max(v, low)
        return top + (
            1 - (math.log10(v) - math.log10(low)) / (math.log10(high) - math.log10(low))
        ) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14" font-weight="bold">Latency by percentile '
        f"({html.escape(results['machine']['cpu'])}, {results['machine']['cores']} cores)</text>",
    ]
    decade = low
    while decade <= high:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(decade):.1f}" y2="{y(decade):.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y(decade) + 4:.1f}" text-anchor="end">{decade:g} ms</text>'
        )
        decade *= 10
    for q in (1, 25, 50, 75, 90, 95, 99):
        parts.append(
            f'<line x1="{x(q):.1f}" x2="{x(q):.1f}" y1="{top}" y2="{height - bottom}" '
            'stroke="#eee"/>'
            f'<text x="{x(q):.1f}" y="{height - bottom + 16}" text-anchor="middle">p{q}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2:.0f}" y="{height - 12}" text-anchor="middle">'
        "percentile</text>"
    )
    for i, (label, ladder) in enumerate(series):
        color = palette[i % len(palette)]
        points = " ".join(f"{x(q + 1):.1f},{y(v):.1f}" for q, v in enumerate(ladder))
        dash = ' stroke-dasharray="5,4"' if label.startswith("floor") else ""
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{points}"/>'
        )
        ly = top + 10 + i * 20
        parts.append(
            f'<line x1="{width - right + 12}" x2="{width - right + 32}" y1="{ly}" y2="{ly}" '
            f'stroke="{color}" stroke-width="2"{dash}/>'
            f'<text x="{width - right + 38}" y="{ly + 4}">{html.escape(label)}</text>'
        )
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path
