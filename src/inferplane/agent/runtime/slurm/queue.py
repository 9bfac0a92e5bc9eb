"""What Slurm says about jobs and nodes, parsed from `squeue`, `sacct` and `sinfo`. Pure.

Fixed `--format`s with a `|` delimiter rather than `--json`: Slurm 22.05's `squeue --json`
ignores every filter (it would dump every user's jobs once a second on a busy cluster) and
the JSON schema changed in each release since, while these format fields have not. The one
field that may hold a `|` (the comment, which only this runtime's jobs are told apart by) is
printed last and parsed as the rest of the line.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

SQUEUE_FIELDS = ("JobID", "State", "Reason", "exit_code", "RestartCnt", "NodeList", "Comment")
SQUEUE_FORMAT = ",".join(f"{field}:|" for field in SQUEUE_FIELDS)
"""For `squeue -O`: each field ends in `|`; with no width given none is cut or padded."""
SACCT_FORMAT = "JobIDRaw,State,ExitCode"
SINFO_FORMAT = "%N|%c|%m|%G|%T"
"""For `sinfo --Node --format`: node name, CPUs, memory (MB), GRES, state."""

PENDING = frozenset(
    {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD",
     "POWER_UP_NODE", "SUSPENDED", "STOPPED"}
)  # fmt: skip
"""Alive in the queue, but the engine is not running (yet, or for now)."""
RUNNING = frozenset({"RUNNING", "RESIZING", "SIGNALING", "UPDATE_DB"})
ENDING = frozenset({"COMPLETING", "STAGE_OUT"})
"""The batch script is over and the nodes are being cleaned: the final state is coming."""
ACTIVE = PENDING | RUNNING | ENDING


@dataclass(frozen=True)
class Job:
    """One row of squeue."""

    job_id: str
    state: str
    """Slurm's job state, e.g. PENDING, RUNNING, FAILED."""
    reason: str
    """Why it pends or why it ended, e.g. Resources, NonZeroExitCode; None when none."""
    exit_status: int | None
    """The batch script's wait status (code << 8 | signal) once it ended."""
    restarts: int
    """How often Slurm requeued the job (node failure, preemption)."""
    nodes: str
    """The allocated nodes, e.g. n[1-2]; '' while pending."""
    comment: str

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def ending(self) -> Ending:
        code, sig = split_status(self.exit_status)
        return Ending(self.job_id, self.state, code=code, signal=sig)


@dataclass(frozen=True)
class Ending:
    """How a job ended, as squeue (shortly after) or sacct (later) tells it."""

    job_id: str
    state: str
    """The final state, e.g. FAILED; '' when nothing records it any more."""
    code: int | None = None
    signal: int | None = None

    def describe(self) -> str:
        """e.g. `Slurm job 12 FAILED (exit code 3)`, for the replica's status message."""
        if not self.state:
            return (
                f"Slurm job {self.job_id} ended; neither squeue nor sacct knows how"
                " (accounting may be disabled)"
            )
        detail = self._detail()
        return f"Slurm job {self.job_id} {self.state}" + (f" ({detail})" if detail else "")

    def _detail(self) -> str:
        if self.state == "CANCELLED":
            return "not by this agent"
        if self.state == "TIMEOUT":
            return "its time limit"
        if self.signal:
            return f"killed by {signal_name(self.signal)}"
        if self.code is not None and self.state in ("FAILED", "COMPLETED"):
            return f"exit code {self.code}"
        return ""


@dataclass(frozen=True)
class Node:
    """One row of `sinfo --Node`."""

    name: str
    cpus: int
    memory_mib: int
    gpus: tuple[tuple[str, int], ...]
    """(type, count) of each kind of GPU on the node; type '' when the GRES names none."""
    state: str

    @property
    def shape(self) -> tuple[int, int, tuple[tuple[str, int], ...]]:
        return (self.cpus, self.memory_mib, self.gpus)


def parse_squeue(text: str) -> list[Job]:
    """Rows of `squeue --noheader -O SQUEUE_FORMAT`; a line that does not parse is skipped."""
    jobs = []
    for line in text.splitlines():
        cells = line.split("|", len(SQUEUE_FIELDS) - 1)
        if len(cells) != len(SQUEUE_FIELDS) or not cells[0].strip():
            continue
        job_id, state, reason, status, restarts, nodes, rest = (c.strip() for c in cells)
        jobs.append(
            Job(
                job_id=job_id,
                state=_state(state),
                reason=reason,
                exit_status=_int(status),
                restarts=_int(restarts) or 0,
                nodes=nodes,
                comment=rest.removesuffix("|").strip(),
            )
        )
    return jobs


def parse_sacct(text: str) -> dict[str, Ending]:
    """Rows of `sacct --noheader --parsable2 --allocations -o SACCT_FORMAT`, by job id."""
    found = {}
    for line in text.splitlines():
        cells = line.strip().split("|")
        if len(cells) != 3 or not cells[0]:
            continue
        code, _, sig = cells[2].partition(":")
        found[cells[0]] = Ending(cells[0], _state(cells[1]), code=_int(code), signal=_int(sig))
    return found


def parse_sinfo(text: str) -> list[Node]:
    """Rows of `sinfo --noheader --Node --format=SINFO_FORMAT`, each node once (sinfo lists a
    node once per partition)."""
    nodes: dict[str, Node] = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) != 5 or not cells[0] or cells[0] in nodes:
            continue
        name, cpus, memory, gres, state = cells
        nodes[name] = Node(name, _int(cpus) or 0, _int(memory) or 0, parse_gres(gres), state)
    return list(nodes.values())


def parse_gres(text: str) -> tuple[tuple[str, int], ...]:
    """The GPUs in a node's GRES, e.g. `gpu:a100:4(S:0-1),gpu:v100:2` or `gpu:2`."""
    found: dict[str, int] = {}
    for item in _split_outside_parentheses(text):
        parts = item.split("(", 1)[0].split(":")
        if parts[0] != "gpu" or len(parts) < 2:
            continue
        count = _count(parts[-1])
        kind = parts[1] if len(parts) > 2 else ""
        if count:
            found[kind] = found.get(kind, 0) + count
    return tuple(sorted(found.items()))


def _split_outside_parentheses(text: str) -> list[str]:
    items, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    return [*items, current] if current else items


def _count(text: str) -> int:
    multiplier = {"K": 1024, "M": 1024**2}.get(text[-1:], 1)
    number = _int(text[:-1] if multiplier > 1 else text)
    return number * multiplier if number else 0


def split_status(status: int | None) -> tuple[int | None, int | None]:
    """A wait status as (exit code, signal); the signal is None when it exited by itself."""
    if status is None:
        return None, None
    sig = status & 0x7F
    return (status >> 8) & 0xFF, (sig or None)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _state(text: str) -> str:
    # sacct writes `CANCELLED by 1000`; a state is its first word.
    return text.split(" ", 1)[0].upper().rstrip("+")


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
