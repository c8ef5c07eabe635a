"""The audit log's picture: trunk attempts per day by status, as plain SVG geometry for a template."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from django.utils.html import escape
from django.utils.safestring import mark_safe

from trunks.models import AuditStatus

# Bottom to top in each day's stacked bar; each has a CSS class in portal.css (.bar-<status>).
CHART_STATUSES = [
    AuditStatus.SUCCEEDED,
    AuditStatus.FAILED,
    AuditStatus.UNKNOWN,
    AuditStatus.NOT_SENT,
    AuditStatus.PENDING,
]

WIDTH, HEIGHT = 720, 180
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 10, 24


@dataclass(frozen=True)
class Bar:
    status: str
    label: str
    # SVG coordinates, formatted once here (the template would localise every float).
    x: str
    y: str
    width: str
    height: str
    count: int
    day: date


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    days: list[dict]  # per day: {"day", "counts": [(label, n)], "total"}
    ticks: list[dict]  # y axis: {"y", "value"}
    labels: list[dict]  # x axis: {"x", "text"}
    total: int
    maximum: int
    first_day: date
    last_day: date
    legend: list[tuple[str, str]]
    baseline: float
    # Each day's link to the log filtered to that day (empty: the bars are not links).
    day_links: dict = field(default_factory=dict)
    slot_width: str = "0"

    # The two long loops as markup built here: ~150 elements a chart, which Django's template
    # engine took ~10 ms to render (a date filter each). Every value is a number, a date or one
    # of our own status names and labels (escaped once), so plain f-strings are safe.
    @property
    def bars_svg(self) -> str:
        names = {status: escape(label.lower()) for status, label in self.legend}

        def rect(b: Bar) -> str:
            return (
                f'<rect class="bar bar-{escape(b.status)}" x="{b.x}" y="{b.y}" '
                f'width="{b.width}" height="{b.height}"><title>{day_label(b.day)}: '
                f"{int(b.count)} {names.get(b.status) or escape(b.label.lower())}</title></rect>"
            )

        # With day_links, a day's bars are one link (with a full-height hit area): clicking a
        # day filters the log to it. The link's URL is escaped like every other text here.
        by_day: dict[date, list[Bar]] = {}
        for b in self.bars:
            by_day.setdefault(b.day, []).append(b)
        parts = [] if self.day_links else [rect(b) for b in self.bars]
        for day, bars in by_day.items() if self.day_links else ():
            href = self.day_links.get(day)
            x = float(bars[0].x) - (float(self.slot_width) - float(bars[0].width)) / 2
            parts.append(
                f'<a class="chart-day" href="{escape(href)}" data-day="{day.isoformat()}" '
                f'aria-label="Show the records of {day_label(day)}">'
                f'<rect class="chart-hit" x="{_n(x)}" y="{TOP}" width="{self.slot_width}" '
                f'height="{_n(self.baseline - TOP)}"></rect>'
                + "".join(rect(b) for b in bars)
                + "</a>"
            )
        return mark_safe(  # noqa: S308 (numbers, dates and escaped labels only)
            "\n".join(parts)
        )

    @property
    def table_rows_html(self) -> str:
        return mark_safe(  # noqa: S308 (numbers, dates and escaped labels only)
            "\n".join(
                f'<tr><th scope="row">{day_label(row["day"])}</th>'
                + "".join(f"<td>{int(n)}</td>" for _label, n in row["counts"])
                + f"<td>{int(row['total'])}</td></tr>"
                for row in self.days
            )
        )


def day_label(day: date) -> str:
    """ "Mon 3 Nov" (the template filter date:"D j M", without its per-call cost)."""
    return f"{day:%a} {day.day} {day:%b}"


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _nice_ceiling(value: int) -> int:
    if value <= 5:
        return max(value, 1)
    for step in (1, 2, 2.5, 5, 10):
        magnitude = 10 ** (len(str(value)) - 1)
        ceiling = int(step * magnitude)
        if ceiling >= value:
            return ceiling
    return value


def chart_build(
    counts: dict[date, dict[str, int]], *, day_link: Callable[[date], str] | None = None
) -> Chart:
    """Stacked bars, one per day, from {day: {status: n}} (days in order); `day_link` gives the
    URL a day's bars lead to."""
    days = sorted(counts)
    labels = dict(AuditStatus.choices)
    totals = [sum(counts[d].values()) for d in days]
    maximum = _nice_ceiling(max(totals, default=0))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.7, 1)
    bars: list[Bar] = []
    rows: list[dict] = []
    for i, day in enumerate(days):
        x = LEFT + i * slot + (slot - bar_w) / 2
        y = TOP + plot_h
        for status in CHART_STATUSES:
            n = counts[day].get(status, 0)
            if not n:
                continue
            h = plot_h * n / maximum
            y -= h
            bars.append(
                Bar(
                    status,
                    labels[status],
                    _n(x),
                    _n(y),
                    _n(bar_w),
                    _n(h),
                    n,
                    day,
                )
            )
        rows.append(
            {
                "day": day,
                "counts": [(labels[s], counts[day].get(s, 0)) for s in CHART_STATUSES],
                "total": sum(counts[day].values()),
            }
        )
    tick_values = [0, maximum // 2, maximum] if maximum % 2 == 0 and maximum > 1 else [0, maximum]
    ticks = [
        {"y": _n(TOP + plot_h - plot_h * value / maximum), "value": str(value)}
        for value in tick_values
    ]
    # A label each week, and on the last day unless a weekly label sits too close to it.
    marks = [i for i in range(len(days)) if i % 7 == 0]
    if days and (len(days) - 1) - marks[-1] >= 4:
        marks.append(len(days) - 1)
    x_labels = [
        {"x": _n(LEFT + i * slot + slot / 2), "text": f"{days[i].day} {days[i]:%b}"} for i in marks
    ]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        days=rows,
        ticks=ticks,
        labels=x_labels,
        total=sum(totals),
        maximum=maximum,
        first_day=days[0] if days else date.today(),
        last_day=days[-1] if days else date.today(),
        legend=[(s.value, labels[s]) for s in CHART_STATUSES],
        baseline=TOP + plot_h,
        day_links={d: day_link(d) for d in days if counts[d]} if day_link else {},
        slot_width=_n(slot),
    )
