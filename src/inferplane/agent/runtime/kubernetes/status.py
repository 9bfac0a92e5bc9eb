"""An engine's status, derived from its workload and pods as the watch last saw them: pure.

The kubelet probes and restarts; this reads what it reports. A replica is Ready when every
member of it (one pod, or each pod of a gang) has its Ready condition; CrashLoopBackOff when a
member's engine container waits in CrashLoopBackOff, or has restarted CRASH_LOOP_AFTER times
without turning ready; Starting otherwise; Draining while its objects are being deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inferplane.agent.runtime import base
from inferplane.agent.runtime.kubernetes import render

Obj = dict[str, Any]
MESSAGE_CHARS = 300
_QUIET_WAITING = frozenset({"ContainerCreating", "PodInitializing"})


@dataclass(frozen=True)
class Observed:
    """What the cache holds of one replica."""

    workload: Obj | None
    pods: list[Obj]
    """Its pods, terminating ones included."""
    size: int = 1
    """Members it has when whole: 1, or the gang's size."""


def facts(observed: Observed, *, stopping: bool) -> base.Facts:
    members = live(observed.pods)
    crashing = any(_crash_looping(pod) for pod in members)
    ready = len(members) >= observed.size and all(pod_ready(pod) for pod in members)
    crashes = max([restarts(pod) for pod in members] or [0])
    return base.Facts(
        stopping=stopping or _deleting(observed.workload),
        alive=bool(members) and not crashing,
        ready=ready,
        crashes=max(crashes, base.CRASH_LOOP_AFTER) if crashing else crashes,
    )


def phase(observed: Observed, *, stopping: bool) -> base.Phase:
    return base.phase_of(facts(observed, stopping=stopping))


def live(pods: list[Obj]) -> list[Obj]:
    return [pod for pod in pods if not _deleting(pod)]


def pod_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def restarts(pod: Obj) -> int:
    engine = _engine_status(pod)
    return int(engine.get("restartCount") or 0) if engine else 0


def total_restarts(pods: list[Obj]) -> int:
    return sum(restarts(pod) for pod in live(pods))


def message(observed: Observed, phase: base.Phase) -> str:
    """Why it is not Ready: the crash, the wait, or the scheduler's word."""
    if phase in ("Ready", "Draining"):
        return ""
    for pod in live(observed.pods):
        text = _pod_message(pod)
        if text:
            return text[:MESSAGE_CHARS]
    return _workload_message(observed.workload)[:MESSAGE_CHARS]


def started_at(pods: list[Obj]) -> datetime | None:
    times = []
    for pod in live(pods):
        running = ((_engine_status(pod) or {}).get("state") or {}).get("running") or {}
        stamp = running.get("startedAt") or (pod.get("status") or {}).get("startTime")
        if stamp:
            times.append(_parse_time(str(stamp)))
    found = [t for t in times if t is not None]
    return min(found) if found else None


# --- reading objects -----------------------------------------------------------------------


def _deleting(obj: Obj | None) -> bool:
    return bool(obj and (obj.get("metadata") or {}).get("deletionTimestamp"))


def _engine_status(pod: Obj) -> Obj | None:
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        if container.get("name") == render.CONTAINER:
            return dict(container)
    return None


def _crash_looping(pod: Obj) -> bool:
    engine = _engine_status(pod)
    if engine is None:
        return False
    waiting = (engine.get("state") or {}).get("waiting") or {}
    if waiting.get("reason") == "CrashLoopBackOff":
        return True
    return restarts(pod) >= base.CRASH_LOOP_AFTER and not pod_ready(pod)


def _pod_message(pod: Obj) -> str:
    engine = _engine_status(pod) or {}
    waiting = (engine.get("state") or {}).get("waiting") or {}
    last = (engine.get("lastState") or {}).get("terminated") or {}
    if waiting.get("reason") == "CrashLoopBackOff" or (_crash_looping(pod) and last):
        return f"back-off restarting failed engine: {_termination(last)}"
    if waiting.get("reason") and waiting["reason"] not in _QUIET_WAITING:
        return f"{waiting['reason']}: {waiting.get('message') or ''}".rstrip(": ")
    if last and not pod_ready(pod):
        return f"engine restarted: {_termination(last)}"
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"{condition.get('reason') or 'Unschedulable'}: {condition.get('message')}"
    return ""


def _termination(terminated: Obj) -> str:
    """The last line of the container's termination message, else its reason and code."""
    lines = [line.strip() for line in str(terminated.get("message") or "").splitlines()]
    lines = [line for line in lines if line]
    if lines:
        return lines[-1]
    code = terminated.get("exitCode")
    reason = terminated.get("reason") or "Error"
    return f"{reason} (exit code {code})" if code is not None else str(reason)


def _workload_message(workload: Obj | None) -> str:
    for condition in ((workload or {}).get("status") or {}).get("conditions") or []:
        failed = condition.get("type") == "ReplicaFailure" and condition.get("status") == "True"
        if failed:
            return str(condition.get("message") or condition.get("reason") or "")
    return ""


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
