"""Scheduler: token budget, decode priority, chunked prefill, ordering, abort, preemption."""

from __future__ import annotations

import pytest

from inferplane.engine import scheduler
from inferplane.engine.sequence import FinishReason, SequenceStatus
from tests.unit.engine.scheduling_helpers import (
    check_invariants,
    make_scheduler,
    make_seq,
    run_to_completion,
    sample_all,
    step,
)


def test_decodes_are_never_starved_by_a_long_prompt() -> None:
    sched = make_scheduler(num_blocks=512, max_num_batched_tokens=64)
    decoders = [make_seq(f"d{i}", 8, max_tokens=100, arrival=i) for i in range(4)]
    for seq in decoders:
        sched.add(seq)
    step(sched)  # the four prompts fit in one step
    sched.add(make_seq("long", 1000, max_tokens=2, arrival=9))
    for _ in range(10):
        out, _ = step(sched)
        assert [out.scheduled[s.seq_id].num_tokens for s in decoders] == [1, 1, 1, 1]
        assert list(out.scheduled)[:4] == [s.seq_id for s in decoders]  # decodes first
        assert out.scheduled["long"].num_tokens == 60  # the prompt fills the rest
        assert out.num_batched_tokens == 64


def test_token_budget_and_max_num_seqs_hold_every_step() -> None:
    sched = make_scheduler(num_blocks=1024, max_num_batched_tokens=50, max_num_seqs=3)
    seqs = [make_seq(f"s{i}", 7 + 11 * i, max_tokens=5, arrival=i) for i in range(8)]
    for seq in seqs:
        sched.add(seq)
    while sched.has_unfinished():
        out, _ = step(sched)
        assert 0 < out.num_batched_tokens <= 50
        assert sum(r.num_tokens for r in out.scheduled.values()) == out.num_batched_tokens
        assert len(out.scheduled) <= 3
        check_invariants(sched, seqs)
    assert all(len(s.output_token_ids) == 5 for s in seqs)


def test_chunked_prefill_off_keeps_a_prompt_that_does_not_fit_waiting() -> None:
    sched = make_scheduler(max_num_batched_tokens=32, enable_chunked_prefill=False)
    sched.add(make_seq("d0", 8, max_tokens=3, arrival=0))
    sched.add(make_seq("d1", 8, max_tokens=3, arrival=1))
    step(sched)
    sched.add(make_seq("p", 31, max_tokens=1, arrival=2))
    out, _ = step(sched)
    assert list(out.scheduled) == ["d0", "d1"]  # 30 tokens left: "p" waits whole
    assert sched.num_waiting == 1
    with pytest.raises(ValueError, match="max_num_batched_tokens"):
        sched.add(make_seq("huge", 40, max_tokens=1))
    run_to_completion(sched)


def test_long_prefill_threshold_caps_each_chunk() -> None:
    sched = make_scheduler(max_num_batched_tokens=64, long_prefill_token_threshold=16)
    sched.add(make_seq("a", 40, arrival=0))
    sched.add(make_seq("b", 40, arrival=1))
    out, _ = step(sched)
    assert {k: r.num_tokens for k, r in out.scheduled.items()} == {"a": 16, "b": 16}


def finish_order(sched: scheduler.Scheduler) -> list[str]:
    return [s.seq_id for s in run_to_completion(sched)]


def test_fcfs_serves_by_arrival() -> None:
    sched = make_scheduler(max_num_seqs=1)
    for arrival in (2, 0, 1):
        sched.add(make_seq(f"s{arrival}", arrival=arrival))
    assert finish_order(sched) == ["s0", "s1", "s2"]


def test_priority_serves_lower_values_first_then_arrival() -> None:
    sched = make_scheduler(max_num_seqs=1)
    sched.add(make_seq("late-urgent", arrival=3, priority=-1))
    sched.add(make_seq("early", arrival=0))
    sched.add(make_seq("low", arrival=1, priority=5))
    sched.add(make_seq("next", arrival=2))
    assert finish_order(sched) == ["late-urgent", "early", "next", "low"]


def test_abort_frees_blocks_at_once_wherever_the_sequence_is() -> None:
    sched = make_scheduler(max_num_seqs=1)
    running, waiting = make_seq("r", 20, arrival=0), make_seq("w", 20, arrival=1)
    sched.add(running)
    sched.add(waiting)
    out = sched.schedule()
    assert sched.blocks.usage > 0
    assert sched.abort("r") is running
    assert sched.blocks.usage == 0.0
    assert running.finish_reason is FinishReason.ABORT
    assert sched.update(out, sample_all(out)) == []  # the step in flight is ignored
    assert sched.abort("w") is waiting
    assert sched.num_waiting == 0
    assert sched.abort("w") is None
    assert not sched.has_unfinished()
    assert sched.schedule().scheduled == {}


def test_stop_tokens_eos_and_ignore_eos() -> None:
    sched = make_scheduler()
    stop = make_seq("stop", stop_token_ids=frozenset({7}), max_tokens=9)
    eos = make_seq("eos", eos_token_id=7, max_tokens=9)
    ignore = make_seq("ignore", eos_token_id=7, ignore_eos=True, max_tokens=3)
    for seq in (stop, eos, ignore):
        sched.add(seq)
    run_to_completion(sched)
    assert (stop.finish_reason, stop.output_token_ids) == (FinishReason.STOP, [7])
    assert (eos.finish_reason, eos.output_token_ids) == (FinishReason.STOP, [7])
    assert (ignore.finish_reason, ignore.output_token_ids) == (FinishReason.LENGTH, [7, 7, 7])


def test_finish_for_a_stop_string_found_by_the_detokenizer() -> None:
    sched = make_scheduler()
    seq = make_seq("a", max_tokens=10)
    sched.add(seq)
    step(sched)
    assert sched.finish("a", FinishReason.STOP) is seq
    assert seq.status is SequenceStatus.FINISHED
    assert sched.blocks.usage == 0.0


def test_preemption_recomputes_and_completes_with_the_same_counts() -> None:
    # 8 blocks of 4: two sequences of 12 + 12 tokens need 6 each, so one must yield.
    sched = make_scheduler(num_blocks=8)
    first, second = make_seq("a", 12, max_tokens=12, arrival=0), make_seq("b", 12, arrival=1)
    second.max_tokens = 12
    sched.add(first)
    sched.add(second)
    preempted: list[str] = []
    while sched.has_unfinished():
        out, _ = step(sched)
        preempted += out.preempted
        assert not set(out.preempted) & set(out.scheduled)
        check_invariants(sched, [first, second])
    assert preempted and set(preempted) == {"b"}  # the later arrival yields
    for seq in (first, second):
        assert len(seq.output_token_ids) == 12
        assert seq.finish_reason is FinishReason.LENGTH


def test_second_request_on_a_shared_prefix_is_scheduled_past_the_cache() -> None:
    sched = make_scheduler(block_size=4)
    shared = list(range(500, 512))  # three full blocks
    sched.add(make_seq("a", prompt=[*shared, 1], max_tokens=1))
    run_to_completion(sched)
    second = make_seq("b", prompt=[*shared, 2, 3], max_tokens=1)
    sched.add(second)
    out = sched.schedule()
    assert second.num_cached_tokens == 12
    assert (out.scheduled["b"].start, out.scheduled["b"].num_tokens) == (12, 2)
    assert sched.blocks.prefix_cache_hits == 12


def test_n_sequences_of_one_request_share_the_prompt_blocks() -> None:
    sched = make_scheduler(block_size=4)
    prompt = list(range(9))
    sched.add(make_seq("r-0", prompt=prompt, arrival=0, max_tokens=8))
    step(sched)
    sched.add(make_seq("r-1", prompt=prompt, arrival=1, max_tokens=8))
    step(sched)
    t0, t1 = sched.blocks.block_table("r-0"), sched.blocks.block_table("r-1")
    assert t0[:2] == t1[:2] and t0[2] != t1[2]


def test_update_requires_a_sample_for_each_sequence_at_its_end() -> None:
    sched = make_scheduler()
    sched.add(make_seq("a"))
    out = sched.schedule()
    with pytest.raises(ValueError, match="sampled"):
        sched.update(out, {})


def test_add_rejects_what_could_never_run() -> None:
    sched = make_scheduler(num_blocks=4, block_size=4)
    with pytest.raises(ValueError, match="max_tokens"):
        sched.add(make_seq("a", 10, max_tokens=10))
    sched.add(make_seq("b"))
    with pytest.raises(ValueError, match="seq_id"):
        sched.add(make_seq("b"))
    with pytest.raises(ValueError, match="max_num_seqs"):
        scheduler.SchedulerConfig(max_num_seqs=0)
