"""A throwaway Slurm cluster on this machine, for the slurm runtime's integration tests.

`running_slurm()` makes a temporary directory holding everything: a munge key and its own
`munged` (own socket, pid, seed and log files: the system's munge is never used), a generated
slurm.conf and gres.conf, and then starts `slurmctld` and one `slurmd` per node, all on
loopback ports picked at run time. Every node is a `slurmd -N NAME` of its own with
`NodeHostname=localhost NodeAddr=127.0.0.1` and a port of its own (Slurm's multiple-slurmd
setup, which Debian's build supports), so a two-node gang runs on one machine. No
accounting daemon: `sacct` answers "accounting storage is disabled", so the runtime reads
endings from `squeue --states=all` (jobs stay there for MinJobAge seconds).

THE GPUS ARE FAKE. gres.conf gives nodes `gpu` devices of type `fake` whose device files are
symlinks to /dev/null: Slurm counts, allocates and binds them (CUDA_VISIBLE_DEVICES is set)
while there is no GPU behind them. `SlurmdParameters=config_overrides` makes each slurmd
report the CPUs and memory slurm.conf gives it, not the machine's, so node shapes are the
test's to choose.

On exit every job is cancelled and waited for, then slurmd, slurmctld and munged are
stopped (each by the pid this module started) and the directory is removed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
START_TIMEOUT_S = 40.0
PARTITION = "debug"


class SlurmUnavailable(RuntimeError):
    """The daemons would not start; the message holds their logs' tails."""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    cpus: int
    memory_mib: int
    gpus: int = 0
    """FAKE GPUs (files that are /dev/null) of GRES type `fake`."""


DEFAULT_NODES = (
    NodeSpec("n1", cpus=2, memory_mib=2000, gpus=2),
    NodeSpec("n2", cpus=2, memory_mib=2000, gpus=2),
    NodeSpec("n3", cpus=1, memory_mib=1000),
)
"""Two identical GPU nodes (a gang's two members), and one smaller CPU-only node."""


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    nodes: tuple[NodeSpec, ...]
    partition: str = PARTITION
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The environment Slurm's commands find this cluster with."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str, check: bool = True) -> str:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, env=self.env, timeout=30, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
        return done.stdout

    def job_ids(self) -> list[str]:
        """The jobs in the queue (pending, running or completing)."""
        return self.run("squeue", "--noheader", "--format=%i").split()

    def show_job(self, job_id: str) -> str:
        return self.run("scontrol", "show", "job", "--details", job_id)

    def cancel_all(self, timeout: float = 30.0) -> None:
        ids = self.job_ids()
        if ids:
            self.run("scancel", *ids, check=False)
        deadline = time.monotonic() + timeout
        while self.job_ids() and time.monotonic() < deadline:
            time.sleep(0.2)

    def log_tail(self, lines: int = 15) -> str:
        tails = []
        for path in sorted(self.root.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"== {path.name}\n" + "\n".join(text))
        return "\n".join(tails)


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def slurm_conf(root: Path, nodes: tuple[NodeSpec, ...], *, controller_port: int) -> str:
    lines = [
        "ClusterName=inferplane-test",
        f"SlurmctldHost={socket.gethostname().split('.')[0]}(127.0.0.1)",
        f"SlurmctldPort={controller_port}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={root / 'munge' / 'munge.socket'}",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}/%n",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd-%n.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd-%n.log'}",
        "SlurmdParameters=config_overrides",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/builtin",
        "MpiDefault=none",
        "ReturnToService=2",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "GresTypes=gpu",
        "KillWait=2",
        "InactiveLimit=0",
        "MessageTimeout=5",
        "SlurmctldTimeout=10",
        "SlurmdTimeout=10",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
    ]
    for node in nodes:
        gres = f" Gres=gpu:fake:{node.gpus}" if node.gpus else ""
        lines.append(
            f"NodeName={node.name} NodeHostname=localhost NodeAddr=127.0.0.1"
            f" Port={free_port()} CPUs={node.cpus} RealMemory={node.memory_mib}{gres}"
            " State=UNKNOWN"
        )
    names = ",".join(node.name for node in nodes)
    lines.append(f"PartitionName={PARTITION} Nodes={names} Default=YES MaxTime=INFINITE State=UP")
    return "\n".join(lines) + "\n"


def gres_conf(root: Path, nodes: tuple[NodeSpec, ...]) -> str:
    """FAKE GPUs: device files that are symlinks to /dev/null (Slurm wants a device file)."""
    lines = []
    for node in nodes:
        if not node.gpus:
            continue
        devices = root / "fake-gpus" / node.name
        devices.mkdir(parents=True)
        for index in range(node.gpus):
            (devices / f"fakegpu{index}").symlink_to("/dev/null")
        files = f"{devices}/fakegpu[0-{node.gpus - 1}]" if node.gpus > 1 else f"{devices}/fakegpu0"
        lines.append(f"NodeName={node.name} Name=gpu Type=fake File={files}")
    return "\n".join(lines) + "\n"


def _start_munge(cluster: SlurmCluster) -> None:
    munge = cluster.root / "munge"
    munge.mkdir(mode=0o755)
    key = munge / "munge.key"
    subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True)
    key.chmod(0o600)
    argv = [
        "munged", "--foreground", "--force", f"--socket={munge / 'munge.socket'}",
        f"--key-file={key}", f"--pid-file={munge / 'munged.pid'}",
        f"--log-file={cluster.root / 'munged.log'}", f"--seed-file={munge / 'munged.seed'}",
    ]  # fmt: skip
    _spawn(cluster, "munged", argv)
    _wait(lambda: (munge / "munge.socket").exists(), cluster, "munged's socket")


def _spawn(cluster: SlurmCluster, name: str, argv: list[str]) -> None:
    out = (cluster.root / f"{name}.out").open("wb")
    process = subprocess.Popen(
        argv, stdout=out, stderr=subprocess.STDOUT, env=cluster.env, start_new_session=True
    )
    out.close()
    cluster.processes.append((name, process))


def _wait(condition: Callable[[], bool], cluster: SlurmCluster, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not condition():
        for name, process in cluster.processes:
            if process.poll() is not None:
                raise SlurmUnavailable(
                    f"{name} exited ({process.returncode})\n{cluster.log_tail()}"
                )
        if time.monotonic() > deadline:
            raise SlurmUnavailable(f"no {what} within {START_TIMEOUT_S:g}s\n{cluster.log_tail()}")
        time.sleep(0.2)


def _nodes_idle(cluster: SlurmCluster) -> bool:
    out = cluster.run("sinfo", "--noheader", "--Node", "--format=%N %T", check=False)
    states = dict(line.split() for line in out.splitlines() if len(line.split()) == 2)
    return len(states) == len(cluster.nodes) and all(s == "idle" for s in states.values())


def _start(cluster: SlurmCluster) -> None:
    root = cluster.root
    for folder in ("state", *(f"spool/{node.name}" for node in cluster.nodes)):
        (root / folder).mkdir(parents=True)
    cluster.conf.write_text(slurm_conf(root, cluster.nodes, controller_port=free_port()))
    (root / "gres.conf").write_text(gres_conf(root, cluster.nodes))
    _start_munge(cluster)
    _spawn(cluster, "slurmctld", ["slurmctld", "-D", "-i", "-f", str(cluster.conf)])
    for node in cluster.nodes:
        argv = ["slurmd", "-D", "-f", str(cluster.conf), "-N", node.name]
        _spawn(cluster, f"slurmd-{node.name}", argv)
    _wait(lambda: _nodes_idle(cluster), cluster, "idle nodes")


def _stop(cluster: SlurmCluster) -> None:
    """Jobs first (a slurmd stopped under a job leaves its slurmstepd behind), then the
    daemons, newest first, each by its own pid."""
    if any(name == "slurmctld" and p.poll() is None for name, p in cluster.processes):
        cluster.cancel_all()
    for _, process in reversed(cluster.processes):
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def running_slurm(nodes: tuple[NodeSpec, ...] = DEFAULT_NODES) -> Iterator[SlurmCluster]:
    """A fresh Slurm cluster for the duration of the block; nothing of it stays behind."""
    missing = missing_binaries()
    if missing:
        raise SlurmUnavailable(f"not installed: {', '.join(missing)} (run `make slurm`)")
    root = Path(tempfile.mkdtemp(prefix="inferplane-slurm-"))
    root.chmod(0o755)
    cluster = SlurmCluster(root=root, conf=root / "slurm.conf", nodes=nodes)
    try:
        _start(cluster)
        yield cluster
    finally:
        _stop(cluster)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A real Slurm cluster (munged, slurmctld, three slurmd) for the whole session; skipped
    where the binaries are missing or slurmd cannot run (it needs root)."""
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing): run `make slurm`")
    if os.geteuid() != 0:
        pytest.skip("slurmd runs jobs as their users, so it needs root: run the tests as root")
    try:
        with running_slurm() as cluster:
            yield cluster
    except SlurmUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
