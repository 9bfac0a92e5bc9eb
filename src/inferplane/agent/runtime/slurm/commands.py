"""The one wrapper around Slurm's commands (sbatch, squeue, scancel, sacct, sinfo).

Each call is an argv list run without a shell, with a timeout: a controller that does not
answer must not hang the agent's loop for long. The commands find their cluster as they
always do (slurm.conf, or SLURM_CONF in `env`), as the user the agent runs as.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from inferplane.agent.runtime import base, process
from inferplane.agent.runtime.slurm import queue

TIMEOUT_S = 15.0


class SlurmError(base.RuntimeFailure):
    """A Slurm command failed or could not be run; the message holds what it said."""


@dataclass(frozen=True)
class Commands:
    """Slurm's commands, run with `env` (the agent's environment when None)."""

    env: Mapping[str, str] | None = None
    timeout: float = TIMEOUT_S
    hidden_env: tuple[str, ...] = process.HIDDEN_ENV
    """The agent's own secrets: never handed to sbatch, whose environment the job gets."""

    def submit(self, argv: list[str]) -> str:
        """Run an sbatch argv with `--parsable`; returns the job id."""
        out = self.run(argv).strip()
        job_id = out.splitlines()[-1].split(";", 1)[0].strip() if out else ""
        if not job_id.isdigit():
            raise SlurmError(f"sbatch printed no job id: {out!r}")
        return job_id

    def jobs(self) -> list[queue.Job]:
        """The user's jobs Slurm still knows, ended ones included (for MinJobAge seconds)."""
        argv = ["squeue", "--me", "--states=all", "--noheader", f"--Format={queue.SQUEUE_FORMAT}"]
        return queue.parse_squeue(self.run(argv))

    def signal(self, job_id: str, name: str) -> None:
        """Send signal `name` (e.g. TERM) to the job's steps (srun), not its batch shell."""
        self.run(["scancel", "--quiet", f"--signal={name}", job_id])

    def cancel(self, job_id: str) -> None:
        """Cancel the job: Slurm sends SIGTERM, then SIGKILL after the cluster's KillWait."""
        self.run(["scancel", "--quiet", job_id])

    def endings(self, job_ids: list[str]) -> dict[str, queue.Ending]:
        """How jobs that left squeue ended, from accounting; {} where sacct has none."""
        argv = ["sacct", "--noheader", "--parsable2", "--allocations",
                f"--format={queue.SACCT_FORMAT}", f"--jobs={','.join(job_ids)}"]  # fmt: skip
        try:
            return queue.parse_sacct(self.run(argv))
        except SlurmError:
            return {}  # accounting disabled (no slurmdbd): the ending stays unknown

    def nodes(self, partition: str | None) -> list[queue.Node]:
        argv = ["sinfo", "--noheader", "--Node", f"--format={queue.SINFO_FORMAT}"]
        if partition:
            argv.append(f"--partition={partition}")
        return queue.parse_sinfo(self.run(argv))

    def version(self) -> str | None:
        """e.g. `Slurm 22.05.8`, from `sinfo --version`; None when sinfo does not answer."""
        try:
            words = self.run(["sinfo", "--version"]).split()
        except SlurmError:
            return None
        return f"Slurm {words[-1]}" if words else None

    def run(self, argv: list[str]) -> str:
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except FileNotFoundError as exc:
            raise SlurmError(f"{argv[0]} is not installed on the agent's host") from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SlurmError(f"{argv[0]} failed: {exc}") from exc
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            raise SlurmError(f"{argv[0]} failed ({done.returncode}): {' '.join(said)[:500]}")
        return done.stdout

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ if self.env is None else self.env)
        for key in self.hidden_env:
            env.pop(key, None)
        return env
