"""One generation stream, tracked by counters rather than phases.

A request with ``n > 1`` becomes ``n`` sequences with the same prompt. The scheduler
never asks "is this sequence prefilling or decoding?": it schedules
``num_tokens - num_computed_tokens`` for every sequence, so chunked prefill (schedule part of
that), prefix caching (start ``num_computed_tokens`` past the cached prefix) and recompute
after preemption (reset it to 0) are all just moves of one counter.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, field


class SequenceStatus(enum.Enum):
    """Where a sequence is; the scheduler only needs this to skip stale entries."""

    WAITING = "waiting"
    RUNNING = "running"
    PREEMPTED = "preempted"
    FINISHED = "finished"


class FinishReason(enum.Enum):
    """Why a sequence ended; the values are OpenAI's ``finish_reason`` strings."""

    STOP = "stop"
    LENGTH = "length"
    ABORT = "abort"


@dataclass(eq=False, slots=True)
class Sequence:
    """One stream of generated tokens and the counters that drive its scheduling."""

    seq_id: str
    """Unique among live sequences (e.g. ``f"{request_id}-{i}"`` for ``n > 1``)."""
    prompt_token_ids: list[int]
    """The prompt; never changes once the sequence exists."""
    max_tokens: int
    """Output tokens after which the sequence finishes with reason ``length``."""
    arrival: int
    """A monotonic order number handed in by the caller: FCFS order without reading a clock."""
    priority: int = 0
    """Lower value is served sooner (vLLM's convention); ties go by ``arrival``."""
    eos_token_id: int | None = None
    """Finishes the sequence with reason ``stop`` unless ``ignore_eos``."""
    stop_token_ids: frozenset[int] = frozenset()
    """Further token ids that finish the sequence with reason ``stop``."""
    ignore_eos: bool = False
    """Keep generating past EOS (benchmarks ask for exactly ``max_tokens``)."""
    cache_salt: Hashable = None
    """Mixed into every prefix-cache block hash, so that a LoRA adapter or a tenant's salt
    never shares KV blocks with another that has the same tokens."""
    output_token_ids: list[int] = field(default_factory=list)
    """Tokens sampled so far, the stop token included."""
    num_computed_tokens: int = 0
    """Tokens whose KV is in the cache (or scheduled and then confirmed by ``update``)."""
    num_cached_tokens: int = 0
    """Prompt tokens found in the prefix cache at the last admission (for usage reports)."""
    status: SequenceStatus = SequenceStatus.WAITING
    finish_reason: FinishReason | None = None

    def __post_init__(self) -> None:
        if not self.prompt_token_ids:
            raise ValueError("prompt_token_ids: must not be empty")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens: must be >= 1, got {self.max_tokens}")

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def num_tokens(self) -> int:
        """Prompt plus output: what the KV cache must eventually hold."""
        return len(self.prompt_token_ids) + len(self.output_token_ids)

    @property
    def num_new_tokens(self) -> int:
        """Tokens still to compute before the next sample can be drawn."""
        return self.num_tokens - self.num_computed_tokens

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED

    def token_ids(self, start: int, end: int) -> tuple[int, ...]:
        """Tokens ``[start, end)`` of prompt + output, without building the whole list."""
        prompt = self.prompt_token_ids
        split = len(prompt)
        if end <= split:
            return tuple(prompt[start:end])
        if start >= split:
            return tuple(self.output_token_ids[start - split : end - split])
        return tuple(prompt[start:]) + tuple(self.output_token_ids[: end - split])

    def stop_reason(self, token_id: int) -> FinishReason | None:
        """The reason to finish after appending ``token_id``, if any.

        A stop token wins over the length limit: a model that chose to stop on its last
        allowed token did stop. Stop *strings* are the detokenizer's business.
        """
        if token_id in self.stop_token_ids:
            return FinishReason.STOP
        if token_id == self.eos_token_id and not self.ignore_eos:
            return FinishReason.STOP
        if len(self.output_token_ids) >= self.max_tokens:
            return FinishReason.LENGTH
        return None
