"""What the engine hands back each step, per sequence: the increment since the last step."""

from __future__ import annotations

from dataclasses import dataclass, field

from inferplane.engine.sampler import TokenLogprobs


@dataclass
class SequenceOutput:
    request_id: str
    index: int
    """Which of the request's n sequences (OpenAI's `choices[].index`)."""
    text: str
    """Text that became final this step (stop strings held back until resolved)."""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprobs] = field(default_factory=list)
    finish_reason: str | None = None
    """None while running; then stop, length or abort."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None
