"""One run: deploy the demo model (autoscaled, or fixed), wait for its replicas, drive the
stepped load through the gateway with `inferplane load`'s own code while sampling the
replicas every second, then delete it and wait until its engines are gone."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console

from bench.autoscaling import objects
from bench.autoscaling.fleet import Fleet
from bench.autoscaling.progress import elapsed, note
from bench.autoscaling.sampler import ReplicaSample, Sampler, is_ready, replicas_of
from inferplane import client as api_client
from inferplane.cli import loadgen
from inferplane.cli import loadstats as stats

PROMPT = loadgen.DEFAULT_PROMPT
LEAD_IN = 3.0
"""Seconds sampled before the load starts."""


@dataclass(frozen=True)
class RunSpec:
    name: str
    """Deployment, Service and model name."""
    label: str
    replicas: int
    """spec.replicas on create: the autoscaler's minimum, or the fixed size."""
    autoscaling: dict[str, Any] | None


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    plan: list[stats.Step]
    outcomes: list[stats.Outcome]
    elapsed: float
    """Seconds the load ran."""
    started: float
    """Wall-clock (epoch) start of the load: time 0 of the outcomes."""
    samples: list[ReplicaSample]
    scaled: list[tuple[float, str]]
    """The deployment's Scaled events: (seconds since the load started, message)."""
    ready_seconds: float
    """From apply to the initial replicas Ready and answering through the gateway."""


class _Progress(loadgen._Progress):
    """`inferplane load`'s plain progress line, with the bench's clock and the replicas."""

    def __init__(
        self, recorder: loadgen._Recorder, request: loadgen._Request, label: str, sampler: Sampler
    ) -> None:
        super().__init__(Console(stderr=True, force_terminal=False), recorder, request)
        self.label, self.sampler = label, sampler

    def _line(self) -> str:
        latest = self.sampler.latest()
        replicas = (
            ""
            if latest is None
            else (f"  replicas {latest.live} live / {latest.ready} ready (spec {latest.desired})")
        )
        return f"[{elapsed():7.1f} s] {self.label}: {super()._line()}{replicas}"


def run(fleet: Fleet, spec: RunSpec, plan: list[stats.Step], *, max_tokens: int) -> RunResult:
    """Deploy, load, sample, tear down; the figures of the run."""
    with fleet.client() as client:
        deployed = time.monotonic()
        client.apply(objects.deployment(spec.name, spec.replicas, spec.autoscaling))
        client.apply(objects.service(spec.name))
        note(spec.label, f"applied; waiting for {spec.replicas} Ready replica(s)")
        try:
            wait_ready(client, spec.name, spec.replicas, label=spec.label)
            wait_answering(fleet, spec.name, timeout=120.0)
            ready_seconds = time.monotonic() - deployed
            note(spec.label, f"{spec.replicas} ready and answering after {ready_seconds:.1f} s")
            result = _load(fleet, spec, plan, max_tokens=max_tokens)
            result = _with(result, ready_seconds, scaled_events(client, spec.name, result.started))
        finally:
            tear_down(client, spec.name, label=spec.label)
    return result


def _load(fleet: Fleet, spec: RunSpec, plan: list[stats.Step], *, max_tokens: int) -> RunResult:
    sampler = Sampler(fleet.url, fleet.admin_token, spec.name)
    sampler.start()
    try:
        time.sleep(LEAD_IN)
        steps = ", ".join(f"{s.clients} clients {s.seconds:g} s" for s in plan)
        note(spec.label, f"load: {steps}")
        recorder = loadgen._Recorder(plan, clock=time.time)
        request = loadgen._Request.chat(
            fleet.gateway,
            fleet.api_key,
            model=spec.name,
            prompt=PROMPT,
            max_tokens=max_tokens,
            stream=True,
        )
        asyncio.run(
            loadgen._drive(recorder, request, _Progress(recorder, request, spec.label, sampler))
        )
    finally:
        sampler.stop()
    note(spec.label, f"load done: {recorder.ok} ok, {len(recorder.outcomes) - recorder.ok} errors")
    return RunResult(
        spec,
        plan,
        list(recorder.outcomes),
        recorder.elapsed,
        recorder.started,
        list(sampler.samples),
        [],
        0.0,
    )


def _with(result: RunResult, ready: float, scaled: list[tuple[float, str]]) -> RunResult:
    return RunResult(
        result.spec,
        result.plan,
        result.outcomes,
        result.elapsed,
        result.started,
        result.samples,
        scaled,
        ready,
    )


def wait_ready(
    client: api_client.Client, name: str, count: int, *, label: str, timeout: float = 600.0
) -> None:
    """Until `count` replicas of the deployment are Ready."""
    start = time.monotonic()
    next_note = start + 15
    while True:
        ready = sum(is_ready(r) for r in replicas_of(client, name))
        if ready >= count:
            return
        now = time.monotonic()
        if now - start > timeout:
            raise RuntimeError(f"{label}: {ready}/{count} replicas Ready after {timeout:.0f} s")
        if now >= next_note:
            note(label, f"{ready}/{count} Ready after {now - start:.0f} s")
            next_note = now + 15
        time.sleep(0.5)


def wait_answering(fleet: Fleet, model: str, *, timeout: float) -> None:
    """Until a completion for `model` through the gateway succeeds (it learns by watch)."""
    deadline = time.monotonic() + timeout
    body = {"model": model, "prompt": "hello", "max_tokens": 1}
    headers = {"Authorization": f"Bearer {fleet.api_key}"}
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.post(
                f"{fleet.gateway}/v1/completions", json=body, headers=headers, timeout=30.0
            )
            if answer.status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"the gateway does not answer for {model} after {timeout:.0f} s")


def scaled_events(
    client: api_client.Client, name: str, since_epoch: float
) -> list[tuple[float, str]]:
    """The deployment's Scaled events, as (seconds since `since_epoch`, message)."""
    from datetime import datetime

    found = []
    for event in client.list("Event", namespace=objects.NAMESPACE).items:
        spec = event.get("spec") or {}
        involved = spec.get("involvedObject") or {}
        if involved.get("kind") != "Deployment" or involved.get("name") != name:
            continue
        stamp = spec.get("lastTimestamp") or spec.get("firstTimestamp")
        if spec.get("reason") == "Scaled" and stamp:
            at = datetime.fromisoformat(stamp).timestamp() - since_epoch
            found.append((round(at, 3), str(spec.get("message") or "")))
    return sorted(found)


def tear_down(client: api_client.Client, name: str, *, label: str, timeout: float = 180.0) -> None:
    """Delete the Service and Deployment; wait until every replica (and engine) is gone."""
    for kind in ("Service", "Deployment"):
        with contextlib.suppress(api_client.NotFound):
            client.delete(kind, name, namespace=objects.NAMESPACE)
    start = time.monotonic()
    while replicas_of(client, name):
        if time.monotonic() - start > timeout:
            note(label, f"replicas still there {timeout:.0f} s after the delete; going on")
            return
        time.sleep(1.0)
    note(label, f"deleted; its replicas were gone after {time.monotonic() - start:.1f} s")
