"""Health probes: one HTTP GET of the engine's health path."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import httpx

ProbeResult = Literal["ok", "unhealthy", "unreachable"]
"""ok: answered 200. unhealthy: answered something else (loading, draining, broken).
unreachable: no answer at all (not listening, hung past the timeout)."""

Probe = Callable[[str], ProbeResult]
"""Probes one URL; the runtime takes any such callable, so tests can script answers."""

TIMEOUT_S = 3.0


def http_probe(url: str) -> ProbeResult:
    try:
        response = httpx.get(url, timeout=TIMEOUT_S)
    except httpx.HTTPError:
        return "unreachable"
    return "ok" if response.status_code == 200 else "unhealthy"


def probe_all(probe: Probe, urls: list[str]) -> list[ProbeResult]:
    """Each URL probed, several at once: one slow engine must not hold up the others."""
    if len(urls) <= 1:
        return [probe(url) for url in urls]
    with ThreadPoolExecutor(max_workers=min(len(urls), 8)) as pool:
        return list(pool.map(probe, urls))
