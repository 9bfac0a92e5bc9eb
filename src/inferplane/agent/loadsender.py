"""Sends each Ready replica's load to the control plane's metrics channel, in a thread.

The autoscaler reads load from memory on the control plane, not from the store, so a fleet of
replicas reporting every few seconds costs no store writes. The agent's loop offers the latest
loads; this thread posts those measured since the last post (a load not re-measured is not
sent again, so a stalled scrape cannot keep a stale number alive).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from inferplane import client as api_client
from inferplane.api import loadreports, replicas

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Offered:
    namespace: str
    name: str
    load: replicas.ReplicaLoad


class LoadSender:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offered: dict[tuple[str, str], Offered] = {}
        self._sent: dict[tuple[str, str], datetime | None] = {}

    def offer(self, loads: list[Offered]) -> None:
        """The latest load of every Ready replica (replaces the previous offer)."""
        with self._lock:
            self._offered = {(o.namespace, o.name): o for o in loads}

    def report(self) -> dict[str, object] | None:
        """The body to post now, or None when nothing new was measured; marks it sent."""
        with self._lock:
            fresh = [
                o
                for key, o in self._offered.items()
                if o.load.observedTime is not None and self._sent.get(key) != o.load.observedTime
            ]
            self._sent = {k: self._sent.get(k) for k in self._offered}
            for o in fresh:
                self._sent[(o.namespace, o.name)] = o.load.observedTime
        if not fresh:
            return None
        entries = [_entry(o) for o in fresh[: loadreports.MAX_ENTRIES]]
        return {"kind": "ReplicaLoadReport", "replicas": entries}

    def run(
        self, make_client: Callable[[], api_client.Client], stop: threading.Event, interval: float
    ) -> None:
        with make_client() as client:
            while not stop.wait(interval):
                body = self.report()
                if body is None:
                    continue
                try:
                    client.report_load(body)
                except api_client.ConnectionFailed:
                    pass  # the control plane is away; the next measurement goes next time
                except api_client.ClientError as error:
                    log.warning("load not reported", extra={"error": str(error)})


def _entry(offered: Offered) -> dict[str, object]:
    load = offered.load
    entry: dict[str, object] = {
        "namespace": offered.namespace,
        "name": offered.name,
        "running": load.running,
        "waiting": load.waiting,
        "kvCacheUsage": load.kvCacheUsage,
        "requestsPerSecond": load.requestsPerSecond,
        "generationTokensPerSecond": load.generationTokensPerSecond,
    }
    if load.ttftSeconds is not None:
        entry["ttftSeconds"] = load.ttftSeconds
    if load.tpotSeconds is not None:
        entry["tpotSeconds"] = load.tpotSeconds
    return entry
