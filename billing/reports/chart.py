"""Spend over time as an inline SVG bar chart, laid out on the server (no JS, no CDN).

Floats are used for geometry only; every figure shown comes from the Decimals, in the
pages' money format (formatting.usd).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .formatting import usd
from .queries import Row

WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 10, 10, 30  # margins for the axis labels
MAX_DAILY_BARS = 92  # longer ranges are shown per month


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str  # the tooltip: period, cost, requests


@dataclass
class Chart:
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    bucket: str = "day"
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM
    right: int = WIDTH - RIGHT


def _by_month(days: list[Row]) -> list[Row]:
    months: dict[str, Row] = {}
    for day in days:
        key = day.group.strftime("%Y-%m")
        months.setdefault(key, Row(label=key, group=key)).add(day)
    return list(months.values())


def _nice_max(value: Decimal) -> Decimal:
    """Round the axis maximum up to 1, 2 or 5 x 10^n."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in (1, 2, 5, 10):
        top = Decimal(step).scaleb(exponent)
        if top >= value:
            return top
    return Decimal(10).scaleb(exponent)


def spend_chart(days: list[Row]) -> Chart:
    """Bars per day (per month beyond MAX_DAILY_BARS days) of Row.cost."""
    bucket = "day" if len(days) <= MAX_DAILY_BARS else "month"
    points = days if bucket == "day" else _by_month(days)
    chart = Chart(bucket=bucket)
    if not points:
        return chart
    top = _nice_max(max(p.cost for p in points))
    plot_w, plot_h = chart.right - chart.left, chart.bottom - TOP
    slot = plot_w / len(points)
    gap = min(slot * 0.15, 4)
    for i, p in enumerate(points):
        h = float(p.cost / top) * plot_h
        if p.cost > 0:
            h = max(h, 1.0)  # a cent is still visible
        chart.bars.append(
            Bar(
                x=round(chart.left + i * slot + gap / 2, 2),
                y=round(chart.bottom - h, 2),
                width=round(max(slot - gap, 1.0), 2),
                height=round(h, 2),
                title=f"{p.label}: {usd(p.cost)} ({p.requests:,} requests)",
            )
        )
    for i in range(5):
        value = top * i / 4
        chart.y_ticks.append((round(chart.bottom - plot_h * i / 4, 2), usd(value)))
    every = max(1, -(-len(points) // 10))  # at most ~10 labels
    for i in range(0, len(points), every):
        label = points[i].label[5:] if bucket == "day" else points[i].label
        chart.x_labels.append((round(chart.left + (i + 0.5) * slot, 2), label))
    return chart
