"""5. Throughput: gunicorn (2 workers) on loopback under `wrk`, against the same server's /healthz.

The server runs production's portal/gunicorn_conf.py (threaded workers, keep-alive, recycling):
gunicorn's default sync worker, which production does not run, closes the connection after every
response and leaves a worker idle while its request waits on PostgreSQL or Redis.

Rounds of /healthz, the form and the audit page in turn; each figure is the median of its rounds.
"""

import os
import re
import shutil
import statistics
import subprocess
import tempfile

import requests

from .harness import FeatureMissing, Figure, Skipped, Target, figure, not_available
from .portal import url_for

SECTION = "5"
PAGES = [("form page", "trunks:create", "trunk form"), ("audit log", "audit:list", "audit log")]
FIGURES = [("ceiling /healthz: requests/s", "req/s", "")] + [
    (f"{label} {path}: {what}", unit, target)
    for label, path in (("form page", "/trunks/new/"), ("audit log", "/audit/"))
    for what, unit, target in (("requests/s", "req/s", "ratio ≥ 0.5"), ("p99 latency", "ms", ""))
]
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def wrk(
    url: str, *, seconds: float, cookie: str | None, connections: int = 8, pace_ms: int = 0
) -> dict[str, float]:
    """Requests/s, p99 latency (ms) and failed responses of `url` under wrk. With `pace_ms`, each
    connection waits that long before each request (wrk's `delay()` hook): the smoke run's few
    requests exercise every path without keeping the server busy for the whole second."""
    cmd = [
        shutil.which("wrk") or "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if pace_ms:
            script.write(f"delay = function() return {int(pace_ms)} end\n")
            script.flush()
            cmd += ["--script", script.name]
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


# Issue 17: each page serves at least half of /healthz's requests per second, same server, same run.
RATIO_AT_LEAST = 0.5


def run(ctx) -> list[Figure]:
    if shutil.which("wrk") is None:
        raise Skipped("wrk not installed: apt-get install wrk")
    server = ctx.portal_server()
    seconds = ctx.config.wrk_seconds
    rounds = ctx.config.wrk_rounds
    # The pages that can be measured here, each checked once through the server before wrk.
    targets: dict[str, tuple[str, str | None]] = {"healthz": ("/healthz", None)}
    figures: list[Figure] = []
    missing: dict[str, str] = {}
    for _label, url_name, feature in PAGES:
        try:
            path = url_for(url_name, feature)
            if url_name == "audit:list":
                # A page of records, as in production: run alone (`--only 5`), the section
                # measured an empty log ("No records match"), a page that reads no rows.
                ctx.audit_records()
            cookie = ctx.session_cookie(
                ctx.lanes[0].user if url_name == "trunks:create" else ctx.root
            )
            check = requests.get(
                f"{server.base_url}{path}",
                headers={"Cookie": cookie},
                timeout=30,
                allow_redirects=False,
            )
            if check.status_code != 200:
                raise RuntimeError(f"gunicorn answered {path} with {check.status_code}, not 200")
            targets[url_name] = (path, cookie)
        except FeatureMissing as gap:
            missing[url_name] = f"feature missing: {gap}"
        except Exception as exc:
            ctx.error(exc)
            missing[url_name] = f"error: {exc}"[:100]
    # Rounds of healthz, form, audit in turn: drift on a shared machine hits each alike, and each
    # figure is the median of its rounds (the page's and /healthz's from the same rounds).
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    loads = []
    for _ in range(rounds):
        for name, (path, cookie) in targets.items():
            runs[name].append(
                _measured(f"{server.base_url}{path}", ctx.config, seconds=seconds, cookie=cookie)
            )
        loads.append(os.getloadavg()[0])
    ceiling = _summary(runs["healthz"])
    load_note = f"load average {min(loads):.1f} to {max(loads):.1f}"
    figures.append(
        figure(
            SECTION,
            "ceiling /healthz: requests/s",
            ceiling["rps"],
            "req/s",
            note=f"p99 {ceiling['p99_ms']:.1f} ms; median of {rounds} rounds of {seconds:g} s, "
            f"interleaved with the pages{_paced(ctx.config)}; {load_note}; the ceiling the pages "
            "are compared to",
        )
    )
    for index, (_label, url_name, _feature) in enumerate(PAGES):
        names = FIGURES[1 + index * 2 : 3 + index * 2]
        if url_name in missing:
            figures += [not_available(SECTION, n, u, missing[url_name]) for n, u, _ in names]
            continue
        figures += _page(runs[url_name], names, ceiling, ctx.config, load_note=load_note)
    return figures


def _measured(url: str, config, *, seconds: float, cookie: str | None) -> dict[str, float]:
    """wrk for `seconds`; longer (twice, up to 16 s) while no request completed at all: a run
    with none is no measurement (a tiny smoke run on a very busy machine)."""
    pacing = {"connections": config.wrk_connections, "pace_ms": config.wrk_pace_ms}
    result = wrk(url, seconds=seconds, cookie=cookie, **pacing)
    while result["requests"] == 0 and seconds < 16:
        seconds *= 2
        result = wrk(url, seconds=seconds, cookie=cookie, **pacing)
    return result


def _paced(config) -> str:
    if not config.wrk_pace_ms:
        return ""
    return f", paced: each connection waits {config.wrk_pace_ms} ms before each request"


def _summary(results: list[dict[str, float]]) -> dict[str, float]:
    """The median requests/s and p99 of several wrk runs, and their failures summed."""
    return {
        "rps": statistics.median(r["rps"] for r in results),
        "p99_ms": statistics.median(r["p99_ms"] for r in results),
        "requests": sum(r["requests"] for r in results),
        "non_2xx": sum(r["non_2xx"] for r in results),
        "socket_errors": "; ".join(r["socket_errors"] for r in results if r["socket_errors"]),
        "each": ", ".join(f"{r['rps']:.0f}" for r in results),
    }


def _page(results, names, ceiling, config, *, load_note: str) -> list[Figure]:
    result = _summary(results)
    note = (
        f"median of {len(results)} rounds ({result['each']} req/s), {result['requests']} requests "
        f"of {config.wrk_seconds:g} s each, {config.wrk_connections} connections"
        f"{_paced(config)}; {load_note}"
    )
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
            target=Target(
                f"ratio ≥ {RATIO_AT_LEAST:g}",
                lambda f: (
                    f.ratio is not None and f.ratio >= RATIO_AT_LEAST and not result["non_2xx"]
                ),
            ),
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
