"""What the engine needs of a model, whatever its architecture."""

from __future__ import annotations

from typing import Protocol

import torch

from inferplane.engine import attention


class CausalLM(Protocol):
    def __call__(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        *,
        cache: attention.KVCache,
        meta: attention.AttentionMetadata,
    ) -> torch.Tensor:
        """Hidden states [tokens, hidden] of the step's tokens."""
        ...

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """float32 logits [tokens, vocab] for the given hidden states."""
        ...

    def fuse_projections(self) -> None:
        """Merge projections that share an input into one matmul, for serving."""
        ...

    def finish_loading(self) -> None:
        """Rebuild what weights assigned from a checkpoint do not carry (ties, RoPE tables)."""
        ...
