"""The measuring kit: figures, medians over repeats after a warm-up, the table and the JSON file.

Nothing here imports Django, so the worker subprocesses and the table can use it before set-up.
"""

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class FeatureMissing(Exception):
    """The portal feature a figure measures is not there (yet): the figure says n/a, not crash."""


class Skipped(Exception):
    """A figure cannot be measured on this machine (e.g. no `wrk`): the reason is shown."""


@dataclass
class Target:
    """A bound on a figure. `check` gets the figure and answers whether it holds."""

    text: str
    check: Callable[["Figure"], bool]


def at_most(bound: float, unit: str = "") -> Target:
    return Target(f"≤ {bound:,g}{(' ' + unit) if unit else ''}", lambda f: f.value <= bound)


def at_least(bound: float, unit: str = "") -> Target:
    return Target(f"≥ {bound:,g}{(' ' + unit) if unit else ''}", lambda f: f.value >= bound)


def ratio_at_most(bound: float) -> Target:
    return Target(f"ratio ≤ {bound:g}", lambda f: f.ratio is not None and f.ratio <= bound)


def all_of(*targets: Target) -> Target:
    return Target(" and ".join(t.text for t in targets), lambda f: all(t.check(f) for t in targets))


@dataclass
class Figure:
    """One measured number, its reference from the same run, and whether its target holds."""

    section: str
    name: str
    value: float | None
    unit: str
    reference: float | None = None
    reference_label: str = ""
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    note: str = ""
    samples: list[float] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.value is None:
            return "n/a"
        if self.passed is None:
            return "—"
        return "PASS" if self.passed else "MISS"


def figure(
    section: str,
    name: str,
    value: float,
    unit: str,
    *,
    reference: float | None = None,
    reference_label: str = "",
    ratio: float | None = None,
    target: Target | None = None,
    note: str = "",
    samples: list[float] | None = None,
    compare: bool = True,
) -> Figure:
    """A figure; the ratio defaults to value / reference (unless `compare` is off), and the target
    is checked here."""
    if compare and ratio is None and reference:
        ratio = value / reference
    fig = Figure(
        section=section,
        name=name,
        value=value,
        unit=unit,
        reference=reference,
        reference_label=reference_label,
        ratio=ratio,
        note=note,
        samples=list(samples or []),
    )
    if target is not None:
        fig.target = target.text
        fig.passed = bool(target.check(fig))
    return fig


def not_available(section: str, name: str, unit: str, reason: str, target: str = "") -> Figure:
    return Figure(section=section, name=name, value=None, unit=unit, target=target, note=reason)


def median(values: list[float]) -> float:
    return statistics.median(values)


def time_ms(fn: Callable[[], Any]) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e6


def repeat_ms(fn: Callable[[], Any], *, repeats: int, warmup: int = 1) -> list[float]:
    """Milliseconds of `repeats` calls of `fn`, after `warmup` calls that are not kept."""
    for _ in range(warmup):
        fn()
    return [time_ms(fn) for _ in range(repeats)]


def interleaved_ms(
    fns: dict[str, Callable[[], Any]], *, repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Time several functions in turn (a, b, a, b, …) so drift on a busy machine hits them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(time_ms(fn))
    return samples


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource  # Not Linux: ru_maxrss is in kilobytes on Linux, bytes on macOS.

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fmt(value: float | None) -> str:
    if value is None:
        return ""
    if float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _row(fig: Figure) -> list[str]:
    if fig.value is None:
        value = f"n/a ({fig.note})" if fig.note else "n/a"
    else:
        value = f"{fmt(fig.value)} {fig.unit}".strip()
    reference = ""
    if fig.reference is not None:
        reference = f"{fmt(fig.reference)}"
        if fig.reference_label:
            reference += f" ({fig.reference_label})"
    ratio = f"{fmt(fig.ratio)}x" if fig.ratio is not None else ""
    return [fig.section, fig.name, value, reference, ratio, fig.target, fig.status]


def render_table(figures: list[Figure], header: str = "") -> str:
    """One Markdown table: readable in a terminal and pasteable into the README."""
    columns = ["#", "figure", "value", "reference (same run)", "ratio", "target", "result"]
    rows = [_row(f) for f in figures]
    widths = [
        max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)
    ]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [header] if header else []
    out.append(line(columns))
    out.append("| " + " | ".join("-" * w for w in widths) + " |")
    out.extend(line(r) for r in rows)
    notes = [f"- {f.section} {f.name}: {f.note}" for f in figures if f.note and f.value is not None]
    if notes:
        out.append("")
        out.extend(notes)
    return "\n".join(out)


def write_json(path: Path, figures: list[Figure], meta: dict[str, Any]) -> None:
    payload = {
        "meta": meta,
        "figures": [{**asdict(f), "status": f.status} for f in figures],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(tmp, path)
