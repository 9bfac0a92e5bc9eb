"""Cold start of the demo model from zero: one request through the gateway to a deployment
at zero (minReplicas 0), and where its time went.

Each point is taken from the most precise source there is, all on this machine's clock:
the bench's own (the request, its first token, and the moments a watch of the Replica and of
its Endpoint delivered each change), the control plane's (the Scaled event, the Scheduled
condition; creationTimestamp has whole seconds only, so the watch's ADDED stands in) and the
agent's log (engine started, engine ready: its first good health probe, every 0.5 s)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.autoscaling import objects
from bench.autoscaling.fleet import Fleet
from bench.autoscaling.progress import note
from bench.autoscaling.runs import scaled_events, tear_down
from inferplane import client as api_client
from inferplane.api.wellknown import DEMAND_AT_ANNOTATION, DEPLOYMENT_LABEL

NAME = "cold"
_AGENT_LINE = re.compile(r'^ts=(\S+) .*?event="(engine started|engine ready|replica starting)"')


@dataclass
class Seen:
    """What a watch delivered: (bench time, event type, object) in order of arrival."""

    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)

    def first(self, test: Any) -> float | None:
        return next((t for t, kind, obj in self.events if test(kind, obj)), None)


def _watch(fleet: Fleet, kind: str, selector: str | None, seen: Seen) -> threading.Thread:
    """A daemon thread recording every change of `kind` after now (it ends with the fleet)."""
    client = fleet.client()
    version = client.list(kind, namespace=objects.NAMESPACE, label_selector=selector)
    stream = client.watch(
        kind,
        namespace=objects.NAMESPACE,
        label_selector=selector,
        resource_version=version.resource_version,
        timeout_seconds=1800,
    )

    def follow() -> None:
        try:
            for event in stream:
                seen.events.append((time.time(), event.type, event.object))
        except (api_client.ClientError, httpx.HTTPError):
            pass

    thread = threading.Thread(target=follow, name=f"watch-{kind}", daemon=True)
    thread.start()
    return thread


def _phase(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "Pending")


@dataclass(frozen=True)
class Request:
    sent: float
    first_token: float | None
    done: float
    status: int
    error: str | None = None


def send(fleet: Fleet, *, max_tokens: int) -> Request:
    """One streamed chat completion through the gateway: when sent, first token, done."""
    body = {
        "model": NAME,
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": max_tokens,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {fleet.api_key}"}
    sent, first = time.time(), None
    with httpx.stream(
        "POST",
        f"{fleet.gateway}/v1/chat/completions",
        json=body,
        headers=headers,
        timeout=httpx.Timeout(900.0, connect=5.0),
    ) as answer:
        if answer.status_code != 200:
            text = answer.read().decode(errors="replace")[:300]
            return Request(sent, None, time.time(), answer.status_code, text)
        for line in answer.iter_lines():
            if line.startswith("data:") and first is None:
                first = time.time()
    return Request(sent, first, time.time(), 200)


def wait_listed(fleet: Fleet, model: str, timeout: float = 60.0) -> None:
    """Until the gateway's /v1/models lists the Service (it learns it by watch)."""
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {fleet.api_key}"}
    while time.monotonic() < deadline:
        answer = httpx.get(f"{fleet.gateway}/v1/models", headers=headers, timeout=5.0)
        if any(card.get("id") == model for card in answer.json().get("data") or []):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the gateway does not list {model} after {timeout:.0f} s")


@dataclass(frozen=True)
class Point:
    label: str
    at: float | None
    """Seconds since the request was sent; None where it was not observed."""
    source: str


@dataclass(frozen=True)
class Segment:
    label: str
    seconds: float | None
    between: tuple[str, str]


@dataclass(frozen=True)
class ColdStart:
    replica: str
    cluster: str
    status: int
    error: str | None
    points: list[Point]
    segments: list[Segment]
    engine_import_seconds: float | None
    """Measured apart: a fresh interpreter importing the engine's modules (torch included)."""
    notes: list[str]
    autoscaler_cold_start_seconds: float | None = None
    """The autoscaler's own measure, status.autoscaling.coldStartSeconds: when it first saw
    the replica (its creation wakes the autoscaler) to when it first saw it Ready."""


SPLITS = (
    ("gateway hold, demand signal, autoscaler, replica created", "request sent", "replica created"),
    ("scheduling", "replica created", "Scheduled"),
    ("engine start", "Scheduled", "engine process started"),
    (
        "model load (interpreter, imports, weights, server; to first good probe)",
        "engine process started",
        "engine ready",
    ),
    ("first token", "engine ready", "first token"),
    ("  of which: agent reports Ready", "engine ready", "Replica Ready"),
    ("  of which: Endpoint created", "Replica Ready", "Endpoint created"),
    ("  of which: gateway releases, prefill, first chunk", "Endpoint created", "first token"),
    ("total: request sent to first token", "request sent", "first token"),
)


def measure(fleet: Fleet, *, max_tokens: int = 16) -> ColdStart:
    """Deploy at zero, send one request, break its wait down; tear the deployment down."""
    autoscaling = {"minReplicas": 0, "maxReplicas": 1, "metric": "concurrency", "target": 4}
    with fleet.client() as client:
        client.apply(objects.deployment(NAME, 0, autoscaling))
        client.apply(objects.service(NAME))
        try:
            wait_listed(fleet, NAME)
            replicas, endpoints = Seen(), Seen()
            _watch(fleet, "Replica", f"{DEPLOYMENT_LABEL}={NAME}", replicas)
            _watch(fleet, "Endpoint", None, endpoints)
            note("cold start", "deployment at zero; sending one request through the gateway")
            request = send(fleet, max_tokens=max_tokens)
            wait = (request.first_token or request.done) - request.sent
            note("cold start", f"HTTP {request.status}; first token after {wait:.1f} s")
            time.sleep(1.0)  # the last watch events
            result = _breakdown(client, fleet, request, replicas, endpoints)
            measured = _autoscaler_cold_start(client)
            result = dataclasses.replace(result, autoscaler_cold_start_seconds=measured)
        finally:
            tear_down(client, NAME, label="cold start")
    return result


def _autoscaler_cold_start(client: api_client.Client, timeout: float = 40.0) -> float | None:
    """status.autoscaling.coldStartSeconds once written (a summary at most every 30 s)."""
    note("cold start", "waiting for the autoscaler's own cold-start figure in the status")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = client.get("Deployment", NAME, namespace=objects.NAMESPACE)
        found = ((obj.get("status") or {}).get("autoscaling") or {}).get("coldStartSeconds")
        if found is not None:
            return float(found)
        time.sleep(1.0)
    return None


def _breakdown(
    client: api_client.Client, fleet: Fleet, request: Request, replicas: Seen, endpoints: Seen
) -> ColdStart:
    found = client.list(
        "Replica", namespace=objects.NAMESPACE, label_selector=f"{DEPLOYMENT_LABEL}={NAME}"
    ).items
    if not found:
        raise RuntimeError("cold start: no replica of the deployment was created")
    replica = found[0]
    name, cluster = replica["metadata"]["name"], replica["spec"].get("cluster") or "-"
    agent = _agent_times(fleet.agent_log(cluster), name)
    epoch = {
        "request sent": request.sent,
        "scaled 0 → 1": next((t for t, _ in scaled_events(client, NAME, 0.0)), None),
        "replica created": replicas.first(lambda kind, obj: kind == "ADDED"),
        "Scheduled": _condition_time(replica, "Scheduled"),
        "agent starts the replica": agent.get("replica starting"),
        "engine process started": agent.get("engine started")
        or _stamp((replica.get("status") or {}).get("startTime")),
        "engine ready": agent.get("engine ready"),
        "Replica Ready": replicas.first(lambda kind, obj: _phase(obj) == "Ready"),
        "Endpoint created": endpoints.first(
            lambda kind, obj: kind == "ADDED" and obj["metadata"]["name"] == name
        ),
        "first token": request.first_token,
        "response done": request.done,
    }
    points = [
        Point(label, None if at is None else at - request.sent, SOURCES[label])
        for label, at in epoch.items()
    ]
    at = {p.label: p.at for p in points}
    segments = [Segment(label, _minus(at.get(b), at.get(a)), (a, b)) for label, a, b in SPLITS]
    missing = [p.label for p in points if p.at is None]
    notes = [f"not observed: {', '.join(missing)}"] if missing else []
    demand = _demand_at(client)
    if demand is not None:
        notes.append(
            f"the gateway's {DEMAND_AT_ANNOTATION} annotation reads {demand - request.sent:+.3f} s:"
            " it has whole seconds only, so it is not a point of the timeline"
        )
    return ColdStart(
        name,
        cluster,
        request.status,
        request.error,
        points,
        segments,
        engine_import_seconds(),
        notes,
    )


SOURCES = {
    "request sent": "bench clock",
    "scaled 0 → 1": "control plane: Scaled event (autoscaler)",
    "replica created": "bench clock: watch ADDED (creationTimestamp has whole seconds)",
    "Scheduled": "control plane: Scheduled condition lastTransitionTime",
    "agent starts the replica": "agent log: replica starting",
    "engine process started": "agent log: engine started (status.startTime)",
    "engine ready": "agent log: engine ready (first good /health; probed every 0.5 s)",
    "Replica Ready": "bench clock: watch, phase Ready",
    "Endpoint created": "bench clock: watch ADDED of the Endpoint",
    "first token": "bench clock: first SSE data line",
    "response done": "bench clock",
}


def _minus(b: float | None, a: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _stamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _condition_time(replica: dict[str, Any], kind: str) -> float | None:
    for condition in (replica.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return _stamp(condition.get("lastTransitionTime"))
    return None


def _demand_at(client: api_client.Client) -> float | None:
    try:
        obj = client.get("Deployment", NAME, namespace=objects.NAMESPACE)
    except api_client.NotFound:
        return None
    return _stamp((obj["metadata"].get("annotations") or {}).get(DEMAND_AT_ANNOTATION))


def _agent_times(log: Path, replica: str) -> dict[str, float]:
    """The first time the agent's log says each of its events for the replica."""
    found: dict[str, float] = {}
    needle = f"replica={objects.NAMESPACE}/{replica}"
    for line in log.read_text(errors="replace").splitlines():
        match = _AGENT_LINE.match(line)
        if match and needle in line.split():
            at = _stamp(match.group(1))
            if at is not None:
                found.setdefault(match.group(2), at)
    return found


def engine_import_seconds() -> float | None:
    """A fresh interpreter importing what the reference engine imports before it loads a
    model (torch included), timed from spawn to exit: the part of the model load no log
    separates."""
    code = "import torch, inferplane.engine.llm, inferplane.engine.server.serving"
    start = time.monotonic()
    try:
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            timeout=300,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return time.monotonic() - start
