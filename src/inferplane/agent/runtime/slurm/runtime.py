"""The slurm runtime: each replica is one Slurm batch job, submitted from the agent's host (a
login node) and watched through the queue.

`sync()` polls `squeue` once for all jobs (at most every `poll_period`), probes the engines
that run, and acts: a job that ended without being asked to is submitted again with backoff
(CrashLoopBackOff after repeated ends), a job not healthy within its startup timeout or that
stops answering its probes is cancelled and submitted again, and a stop sends SIGTERM to the
engine's steps, then cancels the job after the grace period. What the job looks like is
`script`'s to render; the files it shares with the agent are `files`'.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from inferplane import logs
from inferplane.agent import recipes, sources
from inferplane.agent.runtime import base, probes, process
from inferplane.agent.runtime.slurm import commands, files, jobs, queue, records, script
from inferplane.api import fleet
from inferplane.backoff import Backoff

log = logging.getLogger(__name__)

KIND = "slurm"
"""This runtime's name in the registry and in a Cluster's spec.runtime."""
RESTART_BACKOFF = Backoff(base=1.0, cap=60.0)
POLL_BACKOFF_CAP_S = 30.0
"""Longest wait between squeue calls while the controller does not answer."""


@dataclass(frozen=True)
class SlurmSettings:
    data_dir: Path
    """Logs, job scripts, tokens and the state file; on a filesystem shared with the nodes."""
    spec: fleet.SlurmRuntimeSpec = field(default_factory=fleet.SlurmRuntimeSpec)
    """The Cluster's spec.slurm: partition, account, time limit."""
    bind_host: str = "0.0.0.0"
    """What engines listen on (`{host}` in a recipe): every interface of their node, since
    the agent reaches them from another host."""
    backoff: Backoff = RESTART_BACKOFF
    """Delay before submitting again after the n-th consecutive end."""
    poll_period: float = 1.0
    """Seconds between squeue calls (one for all jobs)."""
    probe_period: float = 5.0
    startup_probe_period: float = 0.5
    failure_threshold: int = 3
    """Consecutive failed probes of a Ready engine before it is taken out (and, if it does not
    answer at all, its job cancelled and submitted again)."""
    stable_after: float = 30.0
    """Seconds Ready after which the crash count starts again from zero."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SlurmRuntime:
    """Runs engines as Slurm jobs; see the module docstring."""

    def __init__(
        self,
        settings: SlurmSettings,
        *,
        slurm: commands.Commands | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _utcnow,
        probe: probes.Probe = probes.http_probe,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        """`slurm`: how Slurm's commands are run (its `env` names the cluster's slurm.conf
        where the default one is not it). `environ`: where a recipe's program may be
        overridden (e.g. INFERPLANE_VLLM_PYTHON)."""
        self.settings = settings
        self._slurm = slurm or commands.Commands()
        self._clock = clock
        self._wall = wall
        self._probe = probe
        self._environ = environ
        self._agent = script.agent_id(settings.data_dir)
        self._jobs: dict[str, jobs.ReplicaJob] = {}
        self._next_poll = 0.0
        self._poll_failures = 0

    @property
    def kind(self) -> str:
        return KIND

    def version(self) -> str | None:
        """The Slurm release the agent's commands talk to, e.g. Slurm 22.05.8."""
        return self._slurm.version()

    @property
    def state_path(self) -> Path:
        return self.settings.data_dir / "slurm" / "jobs.json"

    def files(self, name: str) -> script.JobFiles:
        return script.JobFiles.of(self.settings.data_dir, name)

    # -- the Runtime interface --------------------------------------------------------------

    def launch_for(self, replica: base.Replica) -> base.Launch:
        """The replica's engine as a job: gangs run one member per node; the model must be a
        path the nodes see at the same place (or a built-in model); Slurm picks the GPUs."""
        spec = replica.spec
        recipe = recipes.recipe_of(spec.engine)
        model = sources.model_path(spec.model.source, builtin_ok=recipe.builtin_models)
        launch = recipes.launch_for(
            replica.name,
            spec,
            host=self.settings.bind_host,
            model_path=model,
            devices="",
            environ=self._environ,
        )
        reserved = sorted(k for k in launch.env if k.startswith(script.RESERVED_PREFIX))
        if reserved:
            raise recipes.LaunchError(
                f"spec.engine.env sets {', '.join(reserved)}: the slurm runtime reserves"
                f" {script.RESERVED_PREFIX}* for itself"
            )
        # Slurm chooses the devices on whichever node it picks and sets CUDA_VISIBLE_DEVICES
        # itself: the scheduler's indexes into the pool's idea of a node would hide them.
        env = {k: v for k, v in launch.env.items() if k != recipe.devices_env}
        env.update(script.Resources.of(spec.resources).to_env())
        return dataclasses.replace(launch, env=env)

    def adopt(self) -> list[str]:
        """Take over the jobs an earlier agent on this data dir left: live ones as they are,
        ended ones are submitted again (once their token is handed over). Jobs of this agent
        that no record names (it died between sbatch and writing its state) are cancelled."""
        now = self._clock()
        try:
            live = jobs.ours(self._slurm.jobs(), self._agent)
        except commands.SlurmError as exc:
            logs.event(log, "squeue failed", level=logging.WARNING, error=str(exc))
            live = None
        for name, record in records.load(self.state_path).items():
            job = self._adopted(record, live.pop(name, []) if live is not None else None, now)
            if job is not None:
                self._jobs[name] = job
        self._next_poll = now + self.settings.poll_period  # squeue just answered
        for name, orphans in (live or {}).items():
            for row in orphans:
                logs.event(log, "cancelling orphan job", replica=name, job=row.job_id)
                self._cancel_quietly(row.job_id)
        self._save()
        return list(self._jobs)

    def start(self, launch: base.Launch) -> None:
        existing = self._jobs.get(launch.name)
        if existing is not None:
            if existing.launch.fingerprint() != launch.fingerprint():
                raise base.RuntimeFailure(
                    f"{launch.name} runs another launch; stop it before starting this one"
                )
            if launch.token is not None:
                existing.launch = launch  # an adopted job's next submission gets its token
            return
        if launch.needs_token and launch.token is None:
            raise base.RuntimeFailure(f"{launch.name} needs its engine token to start")
        self._render(launch)  # refuse here what cannot be submitted, not in a crash loop
        job = jobs.ReplicaJob(launch)
        self._jobs[launch.name] = job
        self._save()  # first: an agent that dies inside sbatch still knows the job is its own
        self._submit(job, self._clock())
        self._save()

    def stop(self, name: str, *, grace: float) -> None:
        job = self._jobs.get(name)
        if job is None or job.stopping:
            return
        job.stop_deadline = self._clock() + grace
        job.stop_by = self._wall() + timedelta(seconds=grace)
        if job.job_id is not None:
            if job.running_since is None:
                self._cancel(job)  # nothing runs yet: there is nothing to drain
            else:
                self._signal_term(job)
        logs.event(log, "engine stopping", replica=name, grace=grace, job=job.job_id)
        self._save()

    def status(self, name: str) -> base.EngineStatus | None:
        job = self._jobs.get(name)
        if job is None:
            return None
        facts = base.Facts(
            stopping=job.stopping,
            alive=job.job_id is not None,
            ready=job.ready,
            crashes=job.crashes,
        )
        phase = base.phase_of(facts)
        return base.EngineStatus(
            name=name,
            phase=phase,
            url=job.url,
            pid=None,
            restarts=job.restarts + job.requeues,
            started_at=job.started_wall,
            last_probe_at=job.last_probe_wall,
            message=jobs.message(job, phase, self._clock()),
            fingerprint=job.launch.fingerprint(),
        )

    def names(self) -> list[str]:
        return list(self._jobs)

    def job_id(self, name: str) -> str | None:
        """The Slurm job the replica runs as now, if any (for operators and tests)."""
        job = self._jobs.get(name)
        return job.job_id if job is not None else None

    def sync(self) -> None:
        now = self._clock()
        changed = False
        if now >= self._next_poll and any(job.job_id for job in self._jobs.values()):
            changed = self._poll(now)
        due: list[jobs.ReplicaJob] = []
        for name, job in list(self._jobs.items()):
            changed |= self._act(name, job, now, due)
        self._probe_all(due, now)
        if changed:
            self._save()

    def read_log(self, name: str, *, offset: int, limit: int) -> base.LogChunk:
        try:
            with self.files(name).log.open("rb") as file:
                size = os.fstat(file.fileno()).st_size
                start = min(max(offset, 0), size)
                file.seek(start)
                data = file.read(limit)
        except FileNotFoundError as exc:
            raise base.UnknownEngine(f"no log for {name} on this agent") from exc
        return base.LogChunk(data=data, offset=start + len(data), size=size)

    def close(self, *, grace: float, stop_engines: bool) -> None:
        """Leave the jobs to run for the next agent, or stop them: SIGTERM, wait up to the
        grace, cancel what is left (Slurm kills it after its KillWait)."""
        if not stop_engines:
            self._save()
            return
        for name in list(self._jobs):
            self.stop(name, grace=grace)
        deadline = time.monotonic() + grace + 2.0
        while self._jobs and time.monotonic() < deadline:
            self.sync()
            time.sleep(0.1)
        for name, job in self._jobs.items():
            if job.job_id is not None and not job.cancelled:
                self._cancel(job)
            files.forget(self.files(name))
        self._jobs.clear()
        self._save()

    # -- the queue --------------------------------------------------------------------------

    def _poll(self, now: float) -> bool:
        """One squeue for all jobs; returns whether any job changed in a way worth saving."""
        try:
            rows = {row.job_id: row for row in self._slurm.jobs()}
        except commands.SlurmError as exc:
            self._poll_failures += 1
            wait = min(self.settings.poll_period * 2**self._poll_failures, POLL_BACKOFF_CAP_S)
            self._next_poll = now + wait
            if self._poll_failures == 1:
                logs.event(log, "squeue failed", level=logging.WARNING, error=str(exc))
            return False
        self._poll_failures = 0
        self._next_poll = now + self.settings.poll_period
        gone = [j.job_id for j in self._jobs.values() if j.job_id and j.job_id not in rows]
        endings = self._slurm.endings(gone) if gone else {}
        changed = False
        for name, job in list(self._jobs.items()):
            if job.job_id is None:
                continue
            row = rows.get(job.job_id)
            if row is not None and row.active:
                changed |= self._observed(job, row, now)
                continue
            ending = row.ending() if row is not None else endings.get(job.job_id)
            self._ended(name, job, ending or queue.Ending(job.job_id, ""), now)
            changed = True
        return changed

    def _observed(self, job: jobs.ReplicaJob, row: queue.Job, now: float) -> bool:
        """The job is in the queue: note a new run (the first, or after a requeue), and once
        it runs, where its engine listens."""
        job.seen = row
        if row.state not in queue.RUNNING:
            job.ready, job.running_since, job.run = False, None, None
            return False
        run = (row.job_id, row.restarts)
        new = job.run != run
        if new:
            job.run, job.running_since, job.started_wall = run, now, self._wall()
            job.address, job.ready, job.probe_failures, job.next_probe = None, False, 0, now
            logs.event(log, "engine running", replica=job.launch.name, job=row.job_id,
                       nodes=row.nodes)  # fmt: skip
        if job.address is None:
            path = self.files(job.launch.name).address
            job.address = files.read_address(path, job_id=row.job_id, restarts=row.restarts)
        return new

    def _ended(self, name: str, job: jobs.ReplicaJob, ending: queue.Ending, now: float) -> None:
        files.forget(self.files(name))
        if job.stopping:
            del self._jobs[name]
            logs.event(log, "engine stopped", replica=name, job=job.job_id, state=ending.state)
            return
        reason = job.kill_reason or ending.describe()
        last = files.last_line(self.files(name).log)
        job.message = f"{reason}: {last}" if last and not job.kill_reason else reason
        job.restarts += job.requeues
        job.job_id, job.seen, job.run, job.running_since = None, None, None, None
        job.address, job.ready, job.cancelled = None, False, False
        self._crashed(job, now)
        logs.event(log, "engine exited", level=logging.WARNING, replica=name,
                   job=ending.job_id, state=ending.state, code=ending.code)  # fmt: skip

    def _crashed(self, job: jobs.ReplicaJob, now: float) -> None:
        job.crashes += 1
        job.next_submit = now + self.settings.backoff.delay(job.crashes)

    # -- acting on one job ------------------------------------------------------------------

    def _act(self, name: str, job: jobs.ReplicaJob, now: float, due: list[jobs.ReplicaJob]) -> bool:
        """Timers of one job; returns whether the state file needs writing."""
        if job.job_id is None:
            if job.stopping:
                del self._jobs[name]
                return True
            if now >= job.next_submit and self._may_submit(job):
                self._submit(job, now)
                return True
            return False
        if job.stopping:
            if not job.cancelled and job.stop_deadline is not None and now >= job.stop_deadline:
                self._cancel(job)
            return False
        if job.running_since is None or job.cancelled:
            return False
        if not job.ready and now - job.running_since >= job.launch.startup_timeout:
            seconds = job.launch.startup_timeout
            self._kill(job, f"not healthy within its startup timeout of {seconds:g}s")
        elif job.address is not None and now >= job.next_probe:
            due.append(job)
        if job.ready and job.crashes and now - job.ready_since >= self.settings.stable_after:
            job.crashes = 0
        return False

    def _may_submit(self, job: jobs.ReplicaJob) -> bool:
        """A job read back from the state file waits for the agent to hand its token over
        again: started without it, its engine would answer anyone."""
        if not job.launch.needs_token or job.launch.token is not None:
            return True
        if not job.message.startswith(process.WAITING_FOR_TOKEN):
            job.message = process.WAITING_FOR_TOKEN
            logs.event(log, "engine waits for its token", replica=job.launch.name)
        return False

    def _render(self, launch: base.Launch) -> tuple[list[str], str]:
        workdir = self.settings.data_dir.resolve()
        files_of = self.files(launch.name)
        argv = script.sbatch_argv(
            launch, spec=self.settings.spec, files=files_of, workdir=workdir, agent=self._agent
        )
        return argv, script.batch_script(launch, files_of)

    def _submit(self, job: jobs.ReplicaJob, now: float) -> None:
        launch = job.launch
        paths = self.files(launch.name)
        argv, text = self._render(launch)
        attempt = "restart" if job.ever_submitted else "start"
        files.mark(paths.log, f"engine {attempt} at {self._wall().isoformat(timespec='seconds')}")
        paths.script.parent.mkdir(parents=True, exist_ok=True)
        paths.script.write_text(text)
        if launch.needs_token and launch.token is not None:
            files.write_token(paths.token, launch.token)
        try:
            job_id = self._slurm.submit(argv)
        except commands.SlurmError as exc:
            job.message = str(exc)
            files.mark(paths.log, f"sbatch failed: {exc}")
            files.forget(paths)
            self._crashed(job, now)
            logs.event(log, "sbatch failed", level=logging.WARNING, replica=launch.name,
                       error=str(exc))  # fmt: skip
            return
        if job.ever_submitted:
            job.restarts += 1
        job.ever_submitted = True
        job.job_id, job.seen, job.run, job.running_since = job_id, None, None, None
        job.kill_reason, job.cancelled, job.ready, job.address = "", False, False, None
        logs.event(log, "engine submitted", replica=launch.name, job=job_id)

    def _signal_term(self, job: jobs.ReplicaJob) -> None:
        if job.job_id is None:
            return
        try:
            self._slurm.signal(job.job_id, "TERM")
        except commands.SlurmError as exc:
            logs.event(log, "scancel failed", level=logging.WARNING,
                       replica=job.launch.name, error=str(exc))  # fmt: skip

    def _cancel(self, job: jobs.ReplicaJob) -> None:
        job.cancelled = True
        if job.job_id is not None:
            self._cancel_quietly(job.job_id, replica=job.launch.name)

    def _cancel_quietly(self, job_id: str, *, replica: str = "") -> None:
        try:
            self._slurm.cancel(job_id)
        except commands.SlurmError as exc:
            logs.event(log, "scancel failed", level=logging.WARNING, replica=replica,
                       job=job_id, error=str(exc))  # fmt: skip

    def _kill(self, job: jobs.ReplicaJob, reason: str) -> None:
        job.kill_reason = reason
        self._cancel(job)
        logs.event(log, "engine killed", level=logging.WARNING, replica=job.launch.name,
                   job=job.job_id, reason=reason)  # fmt: skip

    # -- adoption ---------------------------------------------------------------------------

    def _adopted(
        self, record: records.Record, live: list[queue.Job] | None, now: float
    ) -> jobs.ReplicaJob | None:
        """The job of one record, bound to its live job if there is one (its own, else the
        newest of the replica's); the other live jobs of the replica are cancelled."""
        name = record.launch.name
        job = jobs.ReplicaJob(record.launch, restarts=record.restarts, ever_submitted=True)
        job.started_wall = jobs.parse_time(record.started)
        if live is None:  # squeue did not answer: the next poll tells
            job.job_id = record.job_id
        else:
            chosen = jobs.choose(live, record.job_id)
            for row in live:
                if row is not chosen:
                    logs.event(log, "cancelling duplicate job", replica=name, job=row.job_id)
                    self._cancel_quietly(row.job_id, replica=name)
            if chosen is not None:
                job.job_id = chosen.job_id
                self._observed(job, chosen, now)
            else:
                files.forget(self.files(name))
                job.next_submit = now
        stop_by = jobs.parse_time(record.stop_by)
        if stop_by is not None:
            if job.job_id is None:
                return None
            job.stop_by = stop_by
            job.stop_deadline = now + max((stop_by - self._wall()).total_seconds(), 0.0)
        logs.event(log, "engine adopted", replica=name, job=job.job_id)
        return job

    # -- probes and reporting ---------------------------------------------------------------

    def _probe_all(self, due: list[jobs.ReplicaJob], now: float) -> None:
        urls = [f"{job.url}{job.launch.health_path}" for job in due]
        for job, result in zip(due, probes.probe_all(self._probe, urls), strict=True):
            job.last_probe_wall = self._wall()
            was_ready = job.ready
            kill = jobs.probed(
                job,
                result,
                now,
                period=self.settings.probe_period,
                startup_period=self.settings.startup_probe_period,
                failure_threshold=self.settings.failure_threshold,
            )
            if job.ready and not was_ready:
                logs.event(log, "engine ready", replica=job.launch.name, url=job.url)
            if kill:
                self._kill(job, kill)

    def _save(self) -> None:
        saved = {
            name: records.Record(
                launch=job.launch,
                job_id=job.job_id,
                restarts=job.restarts,
                started=job.started_wall.isoformat() if job.started_wall else None,
                stop_by=job.stop_by.isoformat() if job.stop_by else None,
            )
            for name, job in self._jobs.items()
        }
        records.save(self.state_path, saved)
