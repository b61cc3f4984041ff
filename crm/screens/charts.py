"""Numbers → coordinates for server-rendered inline SVG charts (no chart library)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    value: float
    label: str
    tone: str


def _tone(score: float) -> str:
    if score <= -0.3:
        return "negative"
    if score >= 0.3:
        return "positive"
    return "neutral"


def sentiment_line(series: list[tuple[int, float]], *, width: int = 280, height: int = 90) -> dict:
    """A line of sentiment scores (-1..1) over the customer's messages, zero in the middle."""
    pad = 8
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    count = len(series)
    points = []
    for index, (message_id, score) in enumerate(series):
        x = pad + (inner_w * index / (count - 1) if count > 1 else inner_w / 2)
        y = pad + inner_h * (1 - (score + 1) / 2)
        points.append(
            Point(round(x, 1), round(y, 1), round(score, 2), f"#{message_id}", _tone(score))
        )
    return {
        "width": width,
        "height": height,
        "zero_y": pad + inner_h / 2,
        "top_y": pad,
        "bottom_y": pad + inner_h,
        "points": points,
        "polyline": " ".join(f"{p.x},{p.y}" for p in points),
        "latest": points[-1] if points else None,
        "trend": _tone(points[-1].value - points[0].value) if count > 1 else "neutral",
    }


def bars(items: list[tuple[str, float]], *, unit: str = "") -> list[dict]:
    """Horizontal bars scaled to the largest value (percent widths for CSS or SVG)."""
    largest = max((value for _label, value in items if value), default=0)
    return [
        {
            "label": label,
            "value": value,
            "unit": unit,
            "percent": round(100 * value / largest, 1) if largest and value else 0,
        }
        for label, value in items
    ]


def score_bars(items: list[tuple[str, float, int]], *, top: float = 5) -> list[dict]:
    """Horizontal bars for (label, average score, count), on the score's own scale (0..top),
    so a 4.0 is as long everywhere."""
    return [
        {
            "label": label,
            "value": average,
            "count": count,
            "percent": round(100 * average / top, 1) if average else 0,
        }
        for label, average, count in items
    ]


def donut(fraction: float, *, radius: float = 40) -> dict:
    """A ring filled to ``fraction`` (0..1) with stroke-dasharray."""
    import math

    fraction = max(0.0, min(1.0, fraction or 0.0))
    circumference = 2 * math.pi * radius
    return {
        "radius": radius,
        "circumference": round(circumference, 2),
        "filled": round(circumference * fraction, 2),
        "percent": round(100 * fraction, 1),
    }


def duration(seconds: float | None) -> str:
    """Seconds as a short human string: 45s, 3m 20s, 2h 05m."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def columns(items: list[tuple], *, width: int = 720, height: int = 140) -> dict:
    """Vertical bars for (label, value) pairs, e.g. escalations per day."""
    pad_top, pad_bottom = 10, 18
    inner = height - pad_top - pad_bottom
    count = max(1, len(items))
    slot = width / count
    largest = max((value for _label, value in items), default=0)
    bars_out = []
    for index, (label, value) in enumerate(items):
        bar_height = inner * value / largest if largest else 0
        bars_out.append(
            {
                "x": round(index * slot + slot * 0.15, 1),
                "y": round(pad_top + inner - bar_height, 1),
                "width": round(max(1.0, slot * 0.7), 1),
                "height": round(bar_height, 1),
                "label": label,
                "value": value,
            }
        )
    return {
        "width": width,
        "height": height,
        "baseline": pad_top + inner,
        "bars": bars_out,
        "largest": largest,
        "first": items[0][0] if items else None,
        "last": items[-1][0] if items else None,
    }


def rate_bars(items: list[tuple[str, float]], *, width: int = 420, row: int = 26) -> dict:
    """Horizontal SVG bars for (label, rate 0..1) pairs, scaled to the largest rate; labels on
    the left, the percentage after each bar (attributes only: no inline style, CSP-safe)."""
    label_w, value_w = 130, 60
    inner = width - label_w - value_w
    largest = max((value for _label, value in items), default=0)
    rows = []
    for index, (label, value) in enumerate(items):
        bar = inner * value / largest if largest else 0
        rows.append(
            {
                "label": label,
                "percent": round(100 * value, 1),
                "y": index * row,
                "text_y": index * row + row * 0.65,
                "x": label_w,
                "width": round(max(bar, 1.0 if value else 0.0), 1),
                "value_x": round(label_w + bar + 6, 1),
            }
        )
    return {"width": width, "height": max(row, row * len(rows)), "rows": rows}
