"""Presence, frequency and repetition penalties, batched over the rows that use them.

The math is vLLM's (`vllm/model_executor/layers/utils.py: apply_penalties`), which is what
clients tuned against:

- repetition (HF/CTRL): for tokens seen in the prompt or the output, positive logits are
  divided by the penalty and negative ones multiplied by it, so > 1 always discourages;
- frequency: `logit -= frequency_penalty * count_in_output`;
- presence: `logit -= presence_penalty * (count_in_output > 0)`.

Counts are built with one `index_add_` over the flattened token ids, not a Python loop per
token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def apply_penalties(
    logits: torch.Tensor,
    *,
    prompt_token_ids: Sequence[Sequence[int]],
    output_token_ids: Sequence[Sequence[int]],
    presence: torch.Tensor,
    frequency: torch.Tensor,
    repetition: torch.Tensor,
) -> torch.Tensor:
    """Return penalised copies of `logits` [R, V]; the other arguments hold one entry per row.

    `presence`, `frequency` and `repetition` are float tensors [R] on the logits' device.
    """
    vocab = logits.shape[1]
    output_counts = token_counts(output_token_ids, vocab=vocab, device=logits.device)
    output_seen = output_counts > 0
    penalised = logits
    if bool((repetition != 1.0).any()):
        prompt_seen = token_counts(prompt_token_ids, vocab=vocab, device=logits.device) > 0
        factor = torch.where(prompt_seen | output_seen, repetition.unsqueeze(1), 1.0)
        penalised = torch.where(logits > 0, logits / factor, logits * factor)
    penalised = penalised - frequency.unsqueeze(1) * output_counts
    return penalised - presence.unsqueeze(1) * output_seen.to(logits.dtype)


def token_counts(
    token_ids: Sequence[Sequence[int]], *, vocab: int, device: torch.device
) -> torch.Tensor:
    """How often each token occurs in each row: float32 [len(token_ids), vocab]."""
    counts = torch.zeros(len(token_ids) * vocab, dtype=torch.float32, device=device)
    flat = [row * vocab + token for row, ids in enumerate(token_ids) for token in ids]
    if flat:
        index = torch.tensor(flat, dtype=torch.long, device=device)
        counts.index_add_(0, index, torch.ones(len(flat), dtype=torch.float32, device=device))
    return counts.view(len(token_ids), vocab)
