"""Sends what the agent's loop decided upward: replica statuses and finalizer removals.

It runs in a thread of its own, so a slow or absent control plane never stalls the loop that
keeps engines alive. A status is sent when it differs from the last one the control plane
accepted; one that could not be sent is sent again on the next pass, so after an outage the
control plane catches up without anything being restarted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inferplane import client as api_client
from inferplane import logs
from inferplane.agent.reconcile import AGENT_STOP

log = logging.getLogger(__name__)

Object = dict[str, Any]
PASS_SECONDS = 1.0
FINALIZER_ATTEMPTS = 5
VOLATILE = ("lastProbeTime",)
"""Status fields sent along but not worth a write of their own."""
CORE = ("phase", "url", "restarts")
"""Status fields the agent owns outright: if the stored ones drift from what it sent (someone
else wrote them, or a write got lost), it sends them again."""
RESEND_SECONDS = 10.0


@dataclass(frozen=True)
class Report:
    namespace: str
    name: str
    status: Object


def _stable(status: Object) -> str:
    return json.dumps({k: v for k, v in status.items() if k not in VOLATILE}, sort_keys=True)


class Reporter:
    """Holds the latest statuses and pending releases; `run` sends them from its thread."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ticks: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._wanted: dict[str, Report] = {}
        self._sent: dict[str, str] = {}
        self._sent_at: dict[str, float] = {}
        self._ticks = ticks
        self._releases: dict[str, Object] = {}
        self._released: set[str] = set()
        self._clock = clock
        self.wake = threading.Event()

    # -- the agent's loop -------------------------------------------------------------------

    def publish(self, reports: dict[str, Report], stored: dict[str, Object] | None = None) -> None:
        """The statuses every replica should have now (replaces the previous set), and the
        statuses the control plane holds, as last seen."""
        now = self._ticks()
        with self._lock:
            self._wanted = dict(reports)
            for key in list(self._sent):
                if key not in reports or self._drifted(key, reports[key], stored or {}, now):
                    del self._sent[key]
                    self._sent_at.pop(key, None)
            pending = any(self._sent.get(k) != _stable(r.status) for k, r in reports.items())
        if pending:
            self.wake.set()

    def _drifted(self, key: str, report: Report, stored: dict[str, Object], now: float) -> bool:
        seen = stored.get(key)
        if seen is None or now - self._sent_at.get(key, now) < RESEND_SECONDS:
            return False
        return any(seen.get(f) != report.status.get(f) for f in CORE if f in report.status)

    def release(self, key: str, obj: Object) -> None:
        """Remove the agent-stop finalizer of this (deleted) replica, once."""
        with self._lock:
            if key in self._released:
                return
            self._releases[key] = obj
        self.wake.set()

    def releasing(self) -> frozenset[str]:
        """Replicas whose finalizer is being, or has been, removed."""
        with self._lock:
            return frozenset(self._releases) | frozenset(self._released)

    def forget(self, keys: set[str]) -> None:
        """These replicas are gone from the cluster's view: drop what is kept about them."""
        with self._lock:
            self._released -= keys

    # -- the reporter's thread --------------------------------------------------------------

    def run(self, make_client: Callable[[], api_client.Client], stop: threading.Event) -> None:
        with make_client() as client:
            while not stop.is_set():
                try:
                    self.flush(client)
                except api_client.ConnectionFailed:
                    pass  # the control plane is away: keep everything and try again
                except Exception:
                    log.exception("reporting failed")
                self.wake.wait(PASS_SECONDS)
                self.wake.clear()

    def flush(self, client: api_client.Client) -> None:
        """One pass: every changed status, then every pending release."""
        with self._lock:
            wanted = [
                (k, r) for k, r in self._wanted.items() if self._sent.get(k) != _stable(r.status)
            ]
            releases = list(self._releases.items())
        for key, report in wanted:
            self._send(client, key, report)
        for key, obj in releases:
            remove_finalizer(client, obj, AGENT_STOP)
            with self._lock:
                self._releases.pop(key, None)
                self._released.add(key)
            logs.event(log, "finalizer removed", replica=key)

    def _send(self, client: api_client.Client, key: str, report: Report) -> None:
        status = {**report.status, "lastProbeTime": self._clock().isoformat()}
        try:
            client.patch(
                "Replica",
                report.name,
                {"status": status},
                namespace=report.namespace,
                subresource="status",
            )
        except api_client.NotFound:
            pass  # deleted meanwhile: the watch will say so
        except api_client.ConnectionFailed:
            raise
        except api_client.ApiError as exc:
            logs.event(log, "status refused", level=logging.WARNING, replica=key, error=exc)
        with self._lock:
            self._sent[key] = _stable(report.status)
            self._sent_at[key] = self._ticks()


def remove_finalizer(client: api_client.Client, obj: Object, finalizer: str) -> None:
    """Merge-patch `metadata.finalizers` without `finalizer`, guarded by resourceVersion; on a
    conflict read the object again and retry."""
    for _ in range(FINALIZER_ATTEMPTS):
        meta = obj["metadata"]
        current = list(meta.get("finalizers") or [])
        if finalizer not in current:
            return
        patch = {
            "metadata": {
                "finalizers": [f for f in current if f != finalizer],
                "resourceVersion": meta.get("resourceVersion"),
            }
        }
        try:
            client.patch("Replica", meta["name"], patch, namespace=meta.get("namespace"))
            return
        except api_client.NotFound:
            return
        except api_client.Conflict:
            try:
                obj = client.get("Replica", meta["name"], namespace=meta.get("namespace"))
            except api_client.NotFound:
                return
    raise api_client.ClientError(f"could not remove {finalizer} from {meta['name']}")
