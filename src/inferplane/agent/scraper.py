"""Scrapes each Ready engine's /metrics every few seconds into its load, in a thread of its own."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from inferplane.agent import load
from inferplane.api import enginemetrics, replicas

log = logging.getLogger(__name__)

TIMEOUT_S = 3.0

Fetch = Callable[[str, str | None], str | None]
"""GETs a metrics URL (with the engine's token as a bearer, when given); the text, or None
when the engine did not answer 200."""


def http_fetch(url: str, token: str | None) -> str | None:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        response = httpx.get(url, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


@dataclass(frozen=True)
class Target:
    url: str
    """The engine's metrics URL."""
    names: enginemetrics.MetricNames
    token: str | None = field(default=None, repr=False)
    """The engine's token, for engines whose /metrics requires it (llama.cpp's server); the
    others keep /metrics open, as vLLM does, and are scraped without it."""


class Scraper:
    """Keeps the last load of every target; the agent's loop sets targets and reads loads."""

    def __init__(
        self,
        *,
        fetch: Fetch = http_fetch,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._targets: dict[str, Target] = {}
        self._samples: dict[str, tuple[Target, load.Sample]] = {}
        self._loads: dict[str, replicas.ReplicaLoad] = {}

    def set_targets(self, targets: dict[str, Target]) -> None:
        with self._lock:
            self._targets = dict(targets)
            for name in set(self._loads) - set(targets):
                self._loads.pop(name, None)
                self._samples.pop(name, None)

    def loads(self) -> dict[str, replicas.ReplicaLoad]:
        with self._lock:
            return dict(self._loads)

    def scrape_once(self) -> None:
        with self._lock:
            targets = dict(self._targets)
        for name, target in targets.items():
            text = self._fetch(target.url, target.token)
            if text is None:
                continue
            current = load.sample(text, target.names, at=self._clock(), observed=self._wall())
            with self._lock:
                kept = self._samples.get(name)
                previous = kept[1] if kept is not None and kept[0] == target else None
                if name in self._targets:
                    self._samples[name] = (target, current)
                    self._loads[name] = load.load_between(previous, current)

    def run(self, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            try:
                self.scrape_once()
            except Exception:
                log.exception("scraping engine metrics failed")
