"""5. Throughput: gunicorn (2 workers) on loopback under `wrk`, against the same server's /healthz."""

import re
import shutil
import subprocess

import requests

from .harness import FeatureMissing, Figure, Skipped, figure, not_available
from .portal import url_for

SECTION = "5"
PAGES = [("form page", "trunks:create", "trunk form"), ("audit log", "audit:list", "audit log")]
FIGURES = [("ceiling /healthz: requests/s", "req/s", "")] + [
    (f"{label} {path}: {what}", unit, "")
    for label, path in (("form page", "/trunks/new/"), ("audit log", "/audit/"))
    for what, unit in (("requests/s", "req/s"), ("p99 latency", "ms"))
]
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def wrk(url: str, *, seconds: float, cookie: str | None, connections: int = 8) -> dict[str, float]:
    """Requests/s, p99 latency (ms) and failed responses of `url` under wrk."""
    cmd = [
        shutil.which("wrk") or "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    cmd.append(url)
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+(?:us|ms|s|m))\s*$", out, re.MULTILINE)
    total = re.search(r"(\d+) requests in", out)
    if not (rps and p99 and total):
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": float(rps.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "requests": int(total.group(1)),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def run(ctx) -> list[Figure]:
    if shutil.which("wrk") is None:
        raise Skipped("wrk not installed: apt-get install wrk")
    server = ctx.portal_server()
    seconds = ctx.config.wrk_seconds
    ceiling = wrk(f"{server.base_url}/healthz", seconds=seconds, cookie=None)
    figures: list[Figure] = [
        figure(
            SECTION,
            "ceiling /healthz: requests/s",
            ceiling["rps"],
            "req/s",
            note=f"p99 {ceiling['p99_ms']:.1f} ms; the ceiling the pages are compared to",
        )
    ]
    for index, (_label, url_name, feature) in enumerate(PAGES):
        names = FIGURES[1 + index * 2 : 3 + index * 2]
        try:
            path = url_for(url_name, feature)
        except FeatureMissing as missing:
            figures += [
                not_available(SECTION, n, u, f"feature missing: {missing}") for n, u, _ in names
            ]
            continue
        try:
            figures += _page(ctx, server, path, url_name, names, ceiling)
        except FeatureMissing as missing:
            figures += [
                not_available(SECTION, n, u, f"feature missing: {missing}") for n, u, _ in names
            ]
        except Exception as exc:
            ctx.error(exc)
            figures += [not_available(SECTION, n, u, f"error: {exc}"[:100]) for n, u, _ in names]
    return figures


def _page(ctx, server, path: str, url_name: str, names, ceiling) -> list[Figure]:
    seconds = ctx.config.wrk_seconds
    cookie = ctx.session_cookie(ctx.lanes[0].user if url_name == "trunks:create" else ctx.root)
    check = requests.get(
        f"{server.base_url}{path}", headers={"Cookie": cookie}, timeout=30, allow_redirects=False
    )
    if check.status_code != 200:
        raise RuntimeError(f"gunicorn answered {path} with {check.status_code}, not 200")
    result = wrk(f"{server.base_url}{path}", seconds=seconds, cookie=cookie)
    note = f"{result['requests']} requests in {seconds:g} s, 8 connections"
    if result["non_2xx"]:
        note += f"; {result['non_2xx']} non-2xx/3xx responses"
    if result["socket_errors"]:
        note += f"; {result['socket_errors']}"
    return [
        figure(
            SECTION,
            names[0][0],
            result["rps"],
            "req/s",
            reference=ceiling["rps"],
            reference_label="/healthz",
            note=note,
        ),
        figure(
            SECTION,
            names[1][0],
            result["p99_ms"],
            "ms",
            reference=ceiling["p99_ms"],
            reference_label="/healthz",
        ),
    ]
