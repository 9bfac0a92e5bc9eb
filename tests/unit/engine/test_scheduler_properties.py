"""Random workloads through schedule/update: pool accounting holds and nothing livelocks."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.engine.sequence import FinishReason, Sequence
from tests.unit.engine.scheduling_helpers import check_invariants, make_scheduler, make_seq, step

BS = 4
MAX_PROMPT = 40
MAX_OUTPUT = 12


@dataclass(frozen=True)
class Arrival:
    at_step: int
    prompt_len: int
    shared_prefix: int
    max_tokens: int
    priority: int
    abort_after: int | None


arrivals = st.builds(
    Arrival,
    at_step=st.integers(0, 20),
    prompt_len=st.integers(1, MAX_PROMPT),
    shared_prefix=st.integers(0, MAX_PROMPT),
    max_tokens=st.integers(1, MAX_OUTPUT),
    priority=st.integers(0, 2),
    abort_after=st.none() | st.integers(0, 15),
)


def build(index: int, spec: Arrival) -> Sequence:
    """Prompts share a common prefix of up to ``shared_prefix`` tokens, so caching hits."""
    shared = min(spec.shared_prefix, spec.prompt_len)
    prompt = list(range(shared)) + [
        10_000 * (index + 1) + i for i in range(spec.prompt_len - shared)
    ]
    return make_seq(
        f"s{index}",
        prompt=prompt,
        max_tokens=spec.max_tokens,
        arrival=index,
        priority=spec.priority,
    )


@settings(max_examples=200, deadline=None)
@given(
    workload=st.lists(arrivals, min_size=1, max_size=12),
    extra_blocks=st.integers(0, 20),
    budget=st.integers(1, 64),
    max_num_seqs=st.integers(1, 8),
    caching=st.booleans(),
)
def test_random_workloads_keep_the_books_and_finish(
    workload: list[Arrival], extra_blocks: int, budget: int, max_num_seqs: int, caching: bool
) -> None:
    # Room for one sequence of the longest possible length, plus a random surplus.
    num_blocks = -(-(MAX_PROMPT + MAX_OUTPUT) // BS) + extra_blocks
    sched = make_scheduler(
        num_blocks=num_blocks,
        block_size=BS,
        prefix_caching=caching,
        max_num_batched_tokens=budget,
        max_num_seqs=max_num_seqs,
    )
    seqs = [build(i, spec) for i, spec in enumerate(workload)]
    aborts: dict[int, list[str]] = {}
    for seq, spec in zip(seqs, workload, strict=True):
        if spec.abort_after is not None:
            aborts.setdefault(spec.at_step + spec.abort_after, []).append(seq.seq_id)
    for now in range(5_000):
        for seq, spec in zip(seqs, workload, strict=True):
            if spec.at_step == now:
                sched.add(seq)
        for seq_id in aborts.get(now, []):
            sched.abort(seq_id)
        out, _ = step(sched)
        assert out.num_batched_tokens <= budget
        check_invariants(sched, seqs)
        if now > 40 and not sched.has_unfinished():
            break
    assert not sched.has_unfinished(), "livelock"
    assert sched.blocks.usage == 0.0
    for seq in seqs:
        if seq.finish_reason is not FinishReason.ABORT:
            assert seq.finish_reason is FinishReason.LENGTH
            assert len(seq.output_token_ids) == seq.max_tokens
