"""Builders and a no-model runner loop for the scheduler and block-manager tests."""

from __future__ import annotations

from typing import Any

from inferplane.engine import kv_blocks, scheduler
from inferplane.engine.sequence import Sequence, SequenceStatus

SAMPLE = 7


def make_seq(
    seq_id: str, prompt_len: int = 8, *, prompt: list[int] | None = None, **kwargs: Any
) -> Sequence:
    """A sequence whose prompt is ``prompt`` or ``prompt_len`` tokens unique to ``seq_id``."""
    kwargs.setdefault("max_tokens", 4)
    kwargs.setdefault("arrival", 0)
    base = 1000 * (abs(hash(seq_id)) % 1000 + 1)
    tokens = prompt if prompt is not None else [base + i for i in range(prompt_len)]
    return Sequence(seq_id=seq_id, prompt_token_ids=list(tokens), **kwargs)


def make_scheduler(
    *,
    num_blocks: int = 64,
    block_size: int = 4,
    prefix_caching: bool = True,
    **config: Any,
) -> scheduler.Scheduler:
    blocks = kv_blocks.BlockManager(
        num_blocks, block_size=block_size, enable_prefix_caching=prefix_caching
    )
    return scheduler.Scheduler(scheduler.SchedulerConfig(**config), blocks)


def sample_all(out: scheduler.SchedulerOutput, token: int = SAMPLE) -> dict[str, list[int] | None]:
    """A runner that samples ``token`` for every row that reached its sequence's end."""
    return {sid: [token] for sid, row in out.scheduled.items() if row.samples}


def step(
    sched: scheduler.Scheduler, token: int = SAMPLE
) -> tuple[scheduler.SchedulerOutput, list[Sequence]]:
    out = sched.schedule()
    return out, sched.update(out, sample_all(out, token))


def check_invariants(sched: scheduler.Scheduler, seqs: list[Sequence]) -> None:
    """Pool accounting, reference counts and block-table sizes after an ``update``."""
    blocks = sched.blocks
    refs = [0] * blocks.num_blocks
    for seq in seqs:
        table = blocks.block_table(seq.seq_id)
        for block_id in table:
            refs[block_id] += 1
        if seq.status is SequenceStatus.RUNNING:
            # Only the last block may be partial: exactly the blocks the computed tokens need.
            assert len(table) == kv_blocks.cdiv(seq.num_computed_tokens, blocks.block_size)
        else:
            assert table == [], seq.seq_id
    assert all(blocks.ref_count(b) == refs[b] for b in range(blocks.num_blocks))
    in_use = sum(1 for r in refs if r > 0)
    assert in_use + blocks.num_free_blocks == blocks.num_blocks
    assert sched.num_running <= sched.config.max_num_seqs


def run_to_completion(sched: scheduler.Scheduler, max_steps: int = 10_000) -> list[Sequence]:
    finished: list[Sequence] = []
    for _ in range(max_steps):
        if not sched.has_unfinished():
            return finished
        finished += step(sched)[1]
    raise AssertionError("livelock: sequences left after max_steps")
