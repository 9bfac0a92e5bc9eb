"""The metrics channel's memory: recent load samples, never written to the store.

Agents report each Ready replica's load every few seconds and gateways their in-flight and
held requests per deployment; the autoscaler reads them here. Keeping them in memory is the
point: 10,000 replicas reporting every few seconds would otherwise be 10,000 store writes,
and only the autoscaler's decisions (and a periodic summary in the Deployment's status) are
worth keeping.

Times are the control plane's own clock on arrival, so a reporter's skewed clock cannot make
its samples look fresher or older than they are. Everything is bounded: a sample's age
(RETENTION_SECONDS), samples per replica and per deployment (PER_KEY), and the keys one
reporter may create (PER_REPORTER), so a hostile agent or gateway can grow memory only so
far. Which samples count is decided later, against the store: a replica's samples count only
when they came from the agent of the cluster the replica is bound to.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from inferplane.policy import autoscaling

RETENTION_SECONDS = 600.0
"""Longest history kept; the stable window cannot usefully be longer than this."""
PER_KEY = 256
"""Samples kept per replica and per (deployment, gateway)."""
PER_REPORTER = 20_000
"""Distinct replicas (or deployments) one agent (or gateway key) may have samples for."""
PER_DEPLOYMENT = 64
"""Gateway instances whose samples are kept per deployment (the oldest-heard goes)."""

NsName = tuple[str, str]


@dataclass(frozen=True)
class Sourced:
    """A sample and the cluster whose agent sent it."""

    cluster: str
    sample: autoscaling.Sample


class LoadBoard:
    """Thread-safe: the API's handlers add, the autoscaler reads."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._replicas: dict[NsName, deque[Sourced]] = {}
        self._gateways: dict[NsName, dict[str, deque[autoscaling.GatewaySample]]] = {}
        self._last_request: dict[NsName, float] = {}
        self._owned: dict[str, OrderedDict[NsName, None]] = {}

    def now(self) -> float:
        return self._clock()

    def add_replicas(self, cluster: str, reports: Iterable[tuple[str, autoscaling.Sample]]) -> int:
        """Keep (namespace, sample) pairs an agent sent, stamped with the arrival time."""
        now = self._clock()
        added = 0
        with self._lock:
            for namespace, sample in reports:
                key = (namespace, sample.replica)
                if not self._claim(f"agent:{cluster}", key):
                    continue
                stamped = Sourced(cluster, dataclasses.replace(sample, time=now))
                self._replicas.setdefault(key, deque(maxlen=PER_KEY)).append(stamped)
                added += 1
        return added

    def add_gateway(
        self,
        reporter: str,
        gateway: str,
        reports: Iterable[tuple[NsName, autoscaling.GatewaySample]],
    ) -> int:
        """Keep ((namespace, deployment), sample) pairs a gateway sent, stamped on arrival.
        `reporter` (its API key) bounds the keys; `gateway` (key and instance) tells its
        samples apart, at most PER_DEPLOYMENT instances per deployment."""
        now = self._clock()
        added = 0
        with self._lock:
            for key, sample in reports:
                if not self._claim(f"gateway:{reporter}", key):
                    continue
                stamped = dataclasses.replace(sample, time=now, gateway=gateway)
                per_gateway = self._gateways.setdefault(key, {})
                if gateway not in per_gateway and len(per_gateway) >= PER_DEPLOYMENT:
                    oldest = min(per_gateway, key=lambda g: per_gateway[g][-1].time)
                    del per_gateway[oldest]
                per_gateway.setdefault(gateway, deque(maxlen=PER_KEY)).append(stamped)
                if sample.arrivals or sample.in_flight or sample.held:
                    self._last_request[key] = now
                added += 1
        return added

    def _claim(self, reporter: str, key: NsName) -> bool:
        """Whether `reporter` may keep samples for `key`: its oldest key makes room past
        PER_REPORTER, so one reporter can never crowd out another."""
        owned = self._owned.setdefault(reporter, OrderedDict())
        if key in owned:
            owned.move_to_end(key)
            return True
        if len(owned) >= PER_REPORTER:
            old, _ = owned.popitem(last=False)
            if reporter.startswith("agent:"):
                self._replicas.pop(old, None)
            else:
                owner = reporter.removeprefix("gateway:") + "/"
                per_gateway = self._gateways.get(old, {})
                for gateway in [g for g in per_gateway if g.startswith(owner)]:
                    del per_gateway[gateway]
        owned[key] = None
        return True

    def replica_samples(
        self, namespace: str, bound: dict[str, str], since: float
    ) -> list[autoscaling.Sample]:
        """Samples newer than `since` of the replicas in `bound` (name → the cluster it is
        bound to), only those its own cluster's agent sent."""
        out: list[autoscaling.Sample] = []
        with self._lock:
            for name, cluster in bound.items():
                kept = self._replicas.get((namespace, name))
                if kept:
                    out.extend(_newer(kept, cluster, since))
        return out

    def gateway_samples(self, key: NsName, since: float) -> list[autoscaling.GatewaySample]:
        with self._lock:
            per_gateway = self._gateways.get(key, {})
            return [s for kept in per_gateway.values() for s in kept if s.time >= since]

    def last_request(self, key: NsName) -> float | None:
        with self._lock:
            return self._last_request.get(key)

    def saw_request(self, key: NsName, at: float) -> None:
        """A request seen by other means (the replicas' own load, a demand annotation)."""
        with self._lock:
            if at > self._last_request.get(key, float("-inf")):
                self._last_request[key] = at

    def prune(self) -> None:
        """Drop samples older than RETENTION_SECONDS (the autoscaler calls it every minute).
        The last request's time stays: scaleToZeroAfterSeconds may be longer than that."""
        horizon = self._clock() - RETENTION_SECONDS
        with self._lock:
            for key in [k for k, kept in self._replicas.items() if kept[-1].sample.time < horizon]:
                del self._replicas[key]
            for key, per_gateway in list(self._gateways.items()):
                for gateway in [g for g, kept in per_gateway.items() if kept[-1].time < horizon]:
                    del per_gateway[gateway]
                if not per_gateway:
                    del self._gateways[key]
            for owned in self._owned.values():
                for key in [
                    k for k in owned if k not in self._replicas and k not in self._gateways
                ]:
                    del owned[key]


def _newer(kept: deque[Sourced], cluster: str, since: float) -> list[autoscaling.Sample]:
    """The samples of `kept` newer than `since` from `cluster`, oldest first. Samples are
    stamped on arrival, so they are in time order: the scan stops at the first older one."""
    newer: list[autoscaling.Sample] = []
    for stamped in reversed(kept):
        if stamped.sample.time < since:
            break
        if stamped.cluster == cluster:
            newer.append(stamped.sample)
    newer.reverse()
    return newer
