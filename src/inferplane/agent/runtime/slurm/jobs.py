"""One replica's job as the slurm runtime tracks it, and the decisions about it that need
no Slurm: what a probe result means, what the status says, which live job to adopt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from inferplane.agent.runtime import base, probes
from inferplane.agent.runtime.slurm import queue, script


@dataclass(eq=False)
class ReplicaJob:
    """One replica's job as the runtime tracks it: what Slurm last said, what the probes
    found, and the timers of its restarts and stop."""

    launch: base.Launch
    job_id: str | None = None
    """The job in the queue, or None while a (re)submission waits."""
    seen: queue.Job | None = None
    restarts: int = 0
    """Submissions after the first, plus Slurm's requeues of the jobs that ended."""
    crashes: int = 0
    ever_submitted: bool = False
    next_submit: float = 0.0
    run: tuple[str, int] | None = None
    """(job id, Slurm restart count) of the run in progress, to notice a requeue."""
    running_since: float | None = None
    started_wall: datetime | None = None
    address: tuple[str, int] | None = None
    ready: bool = False
    ready_since: float = 0.0
    probe_failures: int = 0
    next_probe: float = 0.0
    last_probe_wall: datetime | None = None
    stop_deadline: float | None = None
    stop_by: datetime | None = None
    cancelled: bool = False
    kill_reason: str = ""
    message: str = ""

    @property
    def stopping(self) -> bool:
        return self.stop_deadline is not None

    @property
    def requeues(self) -> int:
        return self.seen.restarts if self.seen is not None else 0

    @property
    def url(self) -> str | None:
        if self.address is None:
            return None
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def probed(
    job: ReplicaJob,
    result: probes.ProbeResult,
    now: float,
    *,
    period: float,
    startup_period: float,
    failure_threshold: int,
) -> str | None:
    """Take in one probe of the job's engine; returns why its job must be cancelled, if it
    must (a Ready engine that stopped answering at all)."""
    job.next_probe = now + (period if job.ready else startup_period)
    if result == "ok":
        if not job.ready:
            job.ready, job.ready_since = True, now
        job.probe_failures, job.message = 0, ""
        return None
    if not job.ready:
        return None  # still starting: the startup timeout decides
    job.probe_failures += 1
    if job.probe_failures < failure_threshold:
        return None
    path = job.launch.health_path
    if result == "unreachable":
        return f"failed {job.probe_failures} liveness probes of {path}"
    job.ready = False
    job.message = f"{path} stopped answering 200"
    return None


def message(job: ReplicaJob, phase: base.Phase, now: float) -> str:
    """The status message: the backoff and why, or why the job waits in the queue, or the
    last thing that went wrong."""
    if phase == "CrashLoopBackOff":
        wait = max(job.next_submit - now, 0.0)
        return f"back-off {wait:.0f}s restarting failed engine: {job.message}"
    seen = job.seen
    if seen is not None and seen.state in queue.PENDING and not job.stopping:
        why = f": {seen.reason}" if seen.reason not in ("", "None") else ""
        return f"Slurm job {seen.job_id} {seen.state}{why}"
    return job.message


def ours(rows: list[queue.Job], agent: str) -> dict[str, list[queue.Job]]:
    """The live jobs of agent `agent` by replica, told apart from others by their comment."""
    found: dict[str, list[queue.Job]] = {}
    for row in rows:
        parsed = script.parse_comment(row.comment)
        if parsed is not None and parsed[0] == agent and row.active:
            found.setdefault(parsed[1], []).append(row)
    return found


def choose(live: list[queue.Job], job_id: str | None) -> queue.Job | None:
    for row in live:
        if row.job_id == job_id:
            return row
    return max(live, key=lambda row: int(row.job_id), default=None)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
