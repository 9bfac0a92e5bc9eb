"""Iteration-level scheduling (Orca) with a per-step token budget and chunked prefill.

Each step is ``schedule() -> SchedulerOutput``, the runner's forward pass, then
``update(output, sampled)``. The scheduler is pure bookkeeping over counters: every sequence
wants ``num_tokens - num_computed_tokens`` tokens, and a step hands out at most
``max_num_batched_tokens`` of them:

1. running decodes first, so a long prompt never stalls a stream (Sarathi-Serve);
2. then running sequences whose prefill was chunked;
3. then new sequences from the waiting queue by (priority, arrival), the last one chunked
   to what is left of the budget when chunked prefill is on.

When the pool has no block for a running sequence, the lowest-priority, latest-arrived
running sequence is preempted by recompute: its blocks are freed, its counter reset to 0,
and it waits again at its original place in the queue. Each concern below is its own
small function so that ``schedule()`` stays readable as features arrive.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from inferplane.engine import kv_blocks
from inferplane.engine.sequence import FinishReason, Sequence, SequenceStatus


@dataclass(frozen=True)
class SchedulerConfig:
    """How much work one step may carry."""

    max_num_seqs: int = 256
    """Sequences running at once (the batch's row count)."""
    max_num_batched_tokens: int = 2048
    """Tokens computed per step, decodes and prefill chunks together."""
    enable_chunked_prefill: bool = True
    """Split a prompt across steps to fit the budget; off, a prompt is scheduled whole."""
    long_prefill_token_threshold: int = 0
    """Most tokens one prefill may take in a step (0: no cap beyond the budget), so that
    several prompts progress side by side instead of one taking the whole budget."""

    def __post_init__(self) -> None:
        if self.max_num_seqs < 1:
            raise ValueError(f"max_num_seqs: must be >= 1, got {self.max_num_seqs}")
        if self.max_num_batched_tokens < 1:
            raise ValueError(
                f"max_num_batched_tokens: must be >= 1, got {self.max_num_batched_tokens}"
            )
        if self.long_prefill_token_threshold < 0:
            raise ValueError("long_prefill_token_threshold: must be >= 0")


class ScheduledSequence(NamedTuple):
    """One row of a step: compute tokens ``[start, start + num_tokens)`` of ``seq``.

    A tuple rather than a dataclass: hundreds are built every step.
    """

    seq: Sequence
    start: int
    num_tokens: int

    @property
    def samples(self) -> bool:
        """Whether this step reaches the sequence's last token, so the runner samples."""
        return self.start + self.num_tokens == self.seq.num_tokens


@dataclass
class SchedulerOutput:
    """What the runner computes this step; decodes come first in ``scheduled``."""

    scheduled: dict[str, ScheduledSequence] = field(default_factory=dict)
    preempted: list[str] = field(default_factory=list)
    """Sequences preempted (blocks freed, to recompute) while building this step."""
    num_batched_tokens: int = 0

    def add(self, seq: Sequence, num_tokens: int) -> None:
        self.scheduled[seq.seq_id] = ScheduledSequence(seq, seq.num_computed_tokens, num_tokens)
        self.num_batched_tokens += num_tokens

    def unschedule(self, seq_id: str) -> None:
        """Drop a row (its sequence was preempted), giving its tokens back to the budget."""
        row = self.scheduled.pop(seq_id, None)
        if row is not None:
            self.num_batched_tokens -= row.num_tokens


def _rank(seq: Sequence) -> tuple[int, int]:
    """Sort key: served first is smallest (priority, then arrival)."""
    return (seq.priority, seq.arrival)


class Scheduler:
    """Decides each step's batch; owns the waiting queue and the running set."""

    def __init__(self, config: SchedulerConfig, blocks: kv_blocks.BlockManager) -> None:
        self.config = config
        self.blocks = blocks
        self._seqs: dict[str, Sequence] = {}
        self._running: dict[str, Sequence] = {}
        # (priority, arrival, seq_id, seq); aborted entries stay until popped.
        self._waiting: list[tuple[int, int, str, Sequence]] = []
        self._num_waiting = 0
        self.num_preemptions = 0
        """Sequences preempted so far (vLLM's ``num_preemptions``)."""

    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        return self._num_waiting

    def has_unfinished(self) -> bool:
        return bool(self._seqs)

    def get(self, seq_id: str) -> Sequence | None:
        return self._seqs.get(seq_id)

    # -- admission and removal ----------------------------------------------------------

    def add(self, seq: Sequence) -> None:
        """Queue a sequence; reject one that could never be scheduled (no livelock)."""
        if seq.seq_id in self._seqs:
            raise ValueError(f"seq_id: {seq.seq_id!r} is already scheduled")
        max_len = seq.num_prompt_tokens + seq.max_tokens
        if kv_blocks.cdiv(max_len, self.blocks.block_size) > self.blocks.num_blocks:
            raise ValueError(
                f"max_tokens: prompt plus max_tokens ({max_len}) exceeds the KV cache "
                f"({self.blocks.num_blocks * self.blocks.block_size} tokens)"
            )
        if not self.config.enable_chunked_prefill and max_len > self.config.max_num_batched_tokens:
            raise ValueError(
                f"max_tokens: prompt plus max_tokens ({max_len}) exceeds max_num_batched_tokens "
                f"({self.config.max_num_batched_tokens}) with chunked prefill off"
            )
        self._seqs[seq.seq_id] = seq
        self._enqueue(seq, SequenceStatus.WAITING)

    def _enqueue(self, seq: Sequence, status: SequenceStatus) -> None:
        seq.status = status
        heapq.heappush(self._waiting, (seq.priority, seq.arrival, seq.seq_id, seq))
        self._num_waiting += 1

    def abort(self, seq_id: str) -> Sequence | None:
        """Finish a sequence wherever it is, freeing its blocks at once."""
        return self.finish(seq_id, FinishReason.ABORT)

    def finish(self, seq_id: str, reason: FinishReason) -> Sequence | None:
        """End a sequence (abort, or a stop string the detokenizer found); None if unknown."""
        seq = self._seqs.pop(seq_id, None)
        if seq is None:
            return None
        if seq.status is not SequenceStatus.RUNNING:
            self._num_waiting -= 1  # its heap entry is skipped when popped
        self._running.pop(seq_id, None)
        self.blocks.free(seq_id)
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = reason
        return seq

    # -- schedule -----------------------------------------------------------------------

    def schedule(self) -> SchedulerOutput:
        """Build one step: running decodes, then chunked prefills, then admissions."""
        out = SchedulerOutput()
        budget = self.config.max_num_batched_tokens
        prefills = self._schedule_decodes(out, budget)
        budget = self.config.max_num_batched_tokens - out.num_batched_tokens
        self._schedule_prefills(prefills, out, budget)
        if not out.preempted:  # admitting now would only be preempted again
            self._schedule_waiting(out, self.config.max_num_batched_tokens - out.num_batched_tokens)
        return out

    def _schedule_decodes(self, out: SchedulerOutput, budget: int) -> list[Sequence]:
        """Schedule one token for each running decode; return the mid-prefill sequences."""
        prefills: list[Sequence] = []
        for seq in list(self._running.values()):
            wanted = len(seq.prompt_token_ids) + len(seq.output_token_ids)
            wanted -= seq.num_computed_tokens
            if wanted != 1:
                prefills.append(seq)
            elif seq.status is SequenceStatus.RUNNING and out.num_batched_tokens < budget:
                self._schedule_running(seq, 1, out)
        return prefills

    def _schedule_prefills(self, seqs: list[Sequence], out: SchedulerOutput, budget: int) -> None:
        """Continue chunked prefills with what the decodes left of the budget."""
        for seq in seqs:
            if budget <= 0:
                return
            if seq.status is SequenceStatus.RUNNING:
                num_tokens = self._chunk(seq.num_new_tokens, budget)
                before = out.num_batched_tokens
                self._schedule_running(seq, num_tokens, out)
                budget -= out.num_batched_tokens - before

    def _schedule_running(self, seq: Sequence, num_tokens: int, out: SchedulerOutput) -> None:
        """Allocate (preempting if needed) and add the row unless ``seq`` was the victim."""
        if self.blocks.allocate(seq, num_tokens) or self._make_room(seq, num_tokens, out):
            out.add(seq, num_tokens)

    def _make_room(self, seq: Sequence, num_tokens: int, out: SchedulerOutput) -> bool:
        """Preempt the worst running sequence until ``seq`` fits; False if ``seq`` itself
        was the worst and went back to waiting."""
        while not self.blocks.allocate(seq, num_tokens):
            victim = max(self._running.values(), key=_rank)
            self._preempt(victim, out)
            if victim is seq:
                return False
        return True

    def _preempt(self, seq: Sequence, out: SchedulerOutput) -> None:
        """Recompute later: free the blocks, reset the counter, queue at its old rank."""
        del self._running[seq.seq_id]
        self.blocks.free(seq.seq_id, computed_tokens=seq.num_computed_tokens)
        seq.num_computed_tokens = 0
        self._enqueue(seq, SequenceStatus.PREEMPTED)
        out.preempted.append(seq.seq_id)
        out.unschedule(seq.seq_id)
        self.num_preemptions += 1

    def _schedule_waiting(self, out: SchedulerOutput, budget: int) -> None:
        """Admit by (priority, arrival) while budget, rows and blocks last; FCFS stops at
        the first that does not fit rather than letting a later one jump it."""
        while budget > 0 and len(self._running) < self.config.max_num_seqs:
            seq = self._peek_waiting()
            if seq is None or not self._admit(seq, budget, out):
                return
            budget -= out.scheduled[seq.seq_id].num_tokens

    def _peek_waiting(self) -> Sequence | None:
        """The best waiting sequence, dropping heap entries of finished ones."""
        while self._waiting:
            seq = self._waiting[0][3]
            if seq.status in (SequenceStatus.WAITING, SequenceStatus.PREEMPTED):
                return seq
            heapq.heappop(self._waiting)
        return None

    def _admit(self, seq: Sequence, budget: int, out: SchedulerOutput) -> bool:
        """Take the cached prefix, allocate the first chunk and move ``seq`` to running."""
        prefix = self.blocks.lookup_prefix(seq)
        wanted = seq.num_tokens - prefix.num_tokens
        if not self.config.enable_chunked_prefill and wanted > budget:
            return False
        num_tokens = self._chunk(wanted, budget)
        if not self.blocks.allocate(seq, num_tokens, prefix=prefix):
            return False
        heapq.heappop(self._waiting)
        self._num_waiting -= 1
        seq.num_computed_tokens = prefix.num_tokens
        seq.num_cached_tokens = prefix.num_tokens
        seq.status = SequenceStatus.RUNNING
        self._running[seq.seq_id] = seq
        out.add(seq, num_tokens)
        return True

    def _chunk(self, wanted: int, budget: int) -> int:
        """Tokens to schedule of ``wanted`` this step: capped by the budget and threshold."""
        threshold = self.config.long_prefill_token_threshold
        if threshold and wanted > 1:
            wanted = min(wanted, threshold)
        return min(wanted, budget)

    # -- update -------------------------------------------------------------------------

    def update(
        self, output: SchedulerOutput, sampled: Mapping[str, list[int] | None]
    ) -> list[Sequence]:
        """Confirm a step: advance counters, append samples, finish; returns the finished.

        ``sampled`` maps each sequence that reached its last token to the token(s) drawn;
        sequences finished or aborted since ``schedule`` are skipped.
        """
        finished: list[Sequence] = []
        for row in output.scheduled.values():
            seq = row.seq
            if seq.status is not SequenceStatus.RUNNING:
                continue
            seq.num_computed_tokens += row.num_tokens
            if seq.num_computed_tokens == seq.num_tokens:
                reason = self._append(seq, sampled.get(seq.seq_id))
                if reason is not None:
                    finished.append(seq)
                    self.finish(seq.seq_id, reason)
        return finished

    def _append(self, seq: Sequence, tokens: list[int] | None) -> FinishReason | None:
        """Append sampled tokens up to the first that finishes the sequence."""
        if not tokens:
            raise ValueError(f"sampled: no token for {seq.seq_id!r}, which reached its end")
        for token in tokens:
            seq.output_token_ids.append(token)
            reason = seq.stop_reason(token)
            if reason is not None:
                return reason
        return None
