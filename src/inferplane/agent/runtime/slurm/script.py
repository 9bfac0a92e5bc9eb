"""What a replica becomes in Slurm: the `sbatch` command line and the batch script, rendered
from its launch. Pure: no process is run here.

Every value a tenant writes (command, args, environment) lands in the script as one shell word
that cannot end its line, so it can neither run shell nor add a `#SBATCH` directive (sbatch
reads directives only above the first command anyway, and those lines are all ours). The
sbatch options come only from the runtime's settings and the replica's resources, each one
argv item of the form `--option=value`.

The script runs on the first node of the allocation, which hosts the gang's leader: it finds
the leader's address (the node's NodeAddr), picks the port (or takes the replica's), writes
`JOBID RESTARTS HOST PORT` to the address file for the agent, and starts one member per node
with `srun`. Each member reads the engine token from its 0600 file, exports the engine's
environment and the gang variables, and execs the engine, so that Slurm's signals reach it.
"""

from __future__ import annotations

import hashlib
import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from inferplane.agent.runtime import base
from inferplane.api import deployments, fleet, values

RESERVED_PREFIX = "INFERPLANE_SLURM_"
"""Variables of the runtime's own: the resources the job asks for (kept in the launch so that
its fingerprint changes with them) and, on the node, the port and leader address."""
GPUS_ENV = RESERVED_PREFIX + "GPUS"
CPUS_ENV = RESERVED_PREFIX + "CPUS"
MEMORY_ENV = RESERVED_PREFIX + "MEMORY_MIB"
PORT_VAR = RESERVED_PREFIX + "PORT"
LEADER_VAR = RESERVED_PREFIX + "LEADER"
TOKEN_VAR = "inferplane_engine_token"
"""The shell variable holding the token inside a member: never exported by its own name."""

JOB_PREFIX = "inferplane-"
COMMENT_PREFIX = "inferplane"
PORT_RANGE = (20000, 52767)
"""Where a member picks a free port when the replica names none ($RANDOM is 15 bits)."""
TIME_LIMIT_WARNING_S = 60
"""Seconds before the time limit at which the engine gets SIGTERM, to drain (sbatch --signal)."""

_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ScriptError(base.RuntimeFailure):
    """The launch cannot be rendered as a Slurm job; the message says why."""


@dataclass(frozen=True)
class JobFiles:
    """A replica's files under the data dir, which compute nodes must see at the same path."""

    log: Path
    """The job's output (sbatch --output), appended over restarts: what read_log serves."""
    script: Path
    """The batch script as submitted, for an operator to read; it holds no secret."""
    token: Path
    """The engine token, mode 0600, while a job of the replica may run."""
    address: Path
    """Written by the job: `JOBID RESTARTS HOST PORT` of the leader's engine."""

    @classmethod
    def of(cls, data_dir: Path, name: str) -> JobFiles:
        stem = name.replace("/", "_")
        jobs = data_dir / "slurm"
        return cls(
            log=data_dir / "logs" / f"{stem}.log",
            script=jobs / f"{stem}.sbatch",
            token=jobs / "secrets" / f"{stem}.token",
            address=jobs / f"{stem}.address",
        )


@dataclass(frozen=True)
class Resources:
    """What one node of the job asks Slurm for."""

    gpus: int = 0
    """`--gres=gpu:N`; Slurm picks the devices and sets CUDA_VISIBLE_DEVICES itself."""
    cpus: int | None = None
    """`--cpus-per-task`, the replica's cpu request rounded up to whole cores."""
    memory_mib: int | None = None
    """`--mem`, the replica's memory request in MiB, rounded up."""

    @classmethod
    def of(cls, spec: deployments.ResourcesSpec) -> Resources:
        cpus = math.ceil(values.parse_quantity(spec.cpu)) if spec.cpu else None
        memory = values.parse_quantity(spec.memory) if spec.memory else None
        return cls(
            gpus=sum(request.count for request in spec.devices),
            cpus=max(cpus, 1) if cpus is not None else None,
            memory_mib=max(math.ceil(memory / 2**20), 1) if memory is not None else None,
        )

    def to_env(self) -> dict[str, str]:
        env = {GPUS_ENV: str(self.gpus)}
        if self.cpus is not None:
            env[CPUS_ENV] = str(self.cpus)
        if self.memory_mib is not None:
            env[MEMORY_ENV] = str(self.memory_mib)
        return env

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Resources:
        try:
            cpus, memory = env.get(CPUS_ENV), env.get(MEMORY_ENV)
            return cls(
                gpus=int(env.get(GPUS_ENV) or 0),
                cpus=int(cpus) if cpus else None,
                memory_mib=int(memory) if memory else None,
            )
        except ValueError as exc:
            raise ScriptError(f"the launch's {RESERVED_PREFIX}* resources are not numbers") from exc


# --- identity ------------------------------------------------------------------------------


def agent_id(data_dir: Path) -> str:
    """Tells this agent's jobs from another's under the same user: its data dir, hashed."""
    return hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]


def job_name(name: str) -> str:
    """`inferplane-NAMESPACE-NAME`, what `squeue` shows; the comment carries the exact name."""
    return JOB_PREFIX + check_name(name).replace("/", "-")


def comment(name: str, agent: str) -> str:
    return f"{COMMENT_PREFIX} agent={agent} replica={check_name(name)}"


def parse_comment(text: str) -> tuple[str, str] | None:
    """(agent, replica) of a comment this runtime wrote; None for any other job's."""
    words = text.strip().split(" ")
    if len(words) != 3 or words[0] != COMMENT_PREFIX:
        return None
    agent, replica = words[1].partition("=")[2], words[2].partition("=")[2]
    if not words[1].startswith("agent=") or not words[2].startswith("replica="):
        return None
    return (agent, replica) if _NAME.match(replica) else None


def check_name(name: str) -> str:
    """A replica's NAMESPACE/NAME, the only shape that goes into a job name or comment."""
    if not _NAME.match(name):
        raise ScriptError(f"{name!r} is not a replica name (NAMESPACE/NAME)")
    return name


# --- sbatch --------------------------------------------------------------------------------


def sbatch_argv(
    launch: base.Launch, *, spec: fleet.SlurmRuntimeSpec, files: JobFiles, workdir: Path, agent: str
) -> list[str]:
    """The sbatch command that submits `launch`, its script file last."""
    resources = Resources.from_env(launch.env)
    argv = [
        "sbatch",
        "--parsable",
        f"--job-name={job_name(launch.name)}",
        f"--comment={comment(launch.name, agent)}",
        f"--output={_output_path(files.log)}",
        "--open-mode=append",
        f"--chdir={workdir}",
        "--requeue",  # a node failure requeues the job rather than ending it
        "--export=ALL",  # the agent's environment (its own secrets removed by the runtime)
        f"--nodes={launch.nodes}",
        "--ntasks-per-node=1",
    ]
    if spec.partition:
        argv.append(f"--partition={spec.partition}")
    if spec.account:
        argv.append(f"--account={spec.account}")
    if spec.timeLimitMinutes > 0:
        warning = min(TIME_LIMIT_WARNING_S, spec.timeLimitMinutes * 30)
        argv += [f"--time={spec.timeLimitMinutes}", f"--signal=TERM@{warning}"]
    argv += _resource_options(resources)
    argv.append(str(files.script))
    return argv


def _resource_options(resources: Resources) -> list[str]:
    options = []
    if resources.gpus:
        options.append(f"--gres=gpu:{resources.gpus}")
    if resources.cpus is not None:
        options.append(f"--cpus-per-task={resources.cpus}")
    if resources.memory_mib is not None:
        options.append(f"--mem={resources.memory_mib}M")
    return options


def _output_path(path: Path) -> str:
    # sbatch expands %j, %N … in the output path: a literal % must be doubled.
    return str(path).replace("%", "%%")


# --- the batch script ----------------------------------------------------------------------


def batch_script(launch: base.Launch, files: JobFiles) -> str:
    """The batch script of `launch`; it names the token's file, never the token."""
    resources = Resources.from_env(launch.env)
    lines = [
        "#!/bin/bash",
        f"# inferplane: replica {check_name(launch.name)}, rendered by the agent's slurm runtime",
        "set -u",
        *_leader_lines(),
        *_port_lines(launch.port),
        f'export {PORT_VAR}="$port" {LEADER_VAR}="$leader_addr"',
        "restarts=${SLURM_RESTART_COUNT:-0}",
        f"address={shell_word(str(files.address))}",
        'printf \'%s %s %s %s\\n\' "$SLURM_JOB_ID" "$restarts" "$leader_addr" "$port"'
        ' > "$address.tmp" && mv -f "$address.tmp" "$address"',
        *_member_function(launch, files),
        "export -f inferplane_member",
        " ".join(_srun(launch.nodes, resources)),
    ]
    return "\n".join(lines) + "\n"


def _leader_lines() -> list[str]:
    """The leader's node is the first of the allocation; its address is the NodeAddr Slurm
    itself reaches it by (the node name where the node has none)."""
    return [
        'leader_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        'leader_addr=$(scontrol show node -o "$leader_node" 2>/dev/null'
        " | sed -n 's/.* NodeAddr=\\([^ ]*\\).*/\\1/p')",
        "leader_addr=${leader_addr:-$leader_node}",
    ]


def _port_lines(port: int | None) -> list[str]:
    if port is not None:
        return [f"port={int(port)}"]
    low, high = PORT_RANGE
    # A port is taken when something accepts a connection on it, here or on the NodeAddr.
    return [
        "port=",
        "for _ in $(seq 1 200); do",
        f"  candidate=$(( {low} + RANDOM % {high - low + 1} ))",
        '  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null &&'
        ' ! (exec 3<>"/dev/tcp/$leader_addr/$candidate") 2>/dev/null; then',
        "    port=$candidate; break",
        "  fi",
        "done",
        'if [ -z "$port" ]; then echo "inferplane: no free port on $leader_node" >&2; exit 1; fi',
    ]


def _member_function(launch: base.Launch, files: JobFiles) -> list[str]:
    """One member: runs on every node, told its place by SLURM_PROCID (one task per node)."""
    body = ["  member_index=$SLURM_PROCID"]
    if launch.needs_token:
        body.append(
            f"  {TOKEN_VAR}=$(cat -- {shell_word(str(files.token))}) ||"
            ' { echo "inferplane: cannot read the engine token" >&2; exit 1; }'
        )
    body += [f"  export {_env_name(key)}={_env_value(value)}" for key, value in _engine_env(launch)]
    if launch.nodes > 1:
        body += _gang_lines(launch.nodes)
    body.append("  exec " + " ".join(_command_words(launch)))
    return ["inferplane_member() {", *body, "}"]


def _engine_env(launch: base.Launch) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in launch.env.items() if not k.startswith(RESERVED_PREFIX))


def _gang_lines(nodes: int) -> list[str]:
    """base.Launch.member_env, computed on the node where index and leader are known."""
    return [
        f'  export {base.GANG_LEADER_ADDRESS}="${LEADER_VAR}"'
        f' {base.GANG_WORKER_INDEX}="$member_index" {base.GANG_SIZE}={nodes}',
        f'  case "${LEADER_VAR}" in *:*) url_host="[${LEADER_VAR}]" ;;'
        f' *) url_host="${LEADER_VAR}" ;; esac',
        f'  export {base.GANG_LEADER_URL}="http://$url_host:${PORT_VAR}"',
        # A worker listens beside the leader's port: members may share a host (several
        # slurmd on one machine), and a worker's port is only ever its own node's business.
        f'  if [ "$member_index" -gt 0 ]; then {PORT_VAR}=$(( {PORT_VAR} + member_index )); fi',
    ]


def _command_words(launch: base.Launch) -> list[str]:
    words = [_command_item(item) for item in launch.command]
    return words + [shell_word(arg) for arg in launch.args]  # args exactly as written


def _command_item(item: str) -> str:
    if item == base.TOKEN:
        return f'"${TOKEN_VAR}"'
    if base.PORT not in item:
        return shell_word(item)
    # `--port={port}` becomes '--port='"$PORT": quoted pieces around the expansion, one word.
    port = f'"${PORT_VAR}"'
    return port.join(shell_word(piece) if piece else "" for piece in item.split(base.PORT))


def _env_name(key: str) -> str:
    if not _ENV_NAME.match(key):
        raise ScriptError(f"{key!r} is not an environment variable name")
    return key


def _env_value(value: str) -> str:
    return f'"${TOKEN_VAR}"' if value == base.TOKEN else shell_word(value)


def _srun(nodes: int, resources: Resources) -> list[str]:
    # One task per node; a member that fails ends the step, so the job, so the whole gang
    # restarts. srun does not inherit --cpus-per-task from sbatch (Slurm 22.05 and later).
    argv = [
        "srun",
        "--export=ALL",
        f"--nodes={nodes}",
        f"--ntasks={nodes}",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
    ]
    if resources.cpus is not None:
        argv.append(f"--cpus-per-task={resources.cpus}")
    if nodes > 1:
        argv.append("--label")  # each member's lines carry its index
    return [*argv, "/bin/bash", "-c", "inferplane_member"]


def shell_word(text: str) -> str:
    """`text` as one bash word on one line: single-quoted, or ANSI-C quoted ($'...') when it
    holds a newline or another control character. A NUL byte, which no argument or
    environment value can hold, is refused rather than silently cut off."""
    if "\x00" in text:
        raise ScriptError(f"{text!r}: a NUL byte cannot be in an argument or variable")
    if not _CONTROL.search(text):
        return shlex.quote(text)
    escaped = "".join(_ansi_c(char) for char in text)
    return f"$'{escaped}'"


def _ansi_c(char: str) -> str:
    if char in ("\\", "'"):
        return "\\" + char
    if _CONTROL.match(char):
        return f"\\x{ord(char):02x}"
    return char
