"""execute(): turn a SchedulerOutput into one forward pass and the sampled tokens.

The scheduler decided which tokens to compute; the runner flattens them into one batch,
builds the attention metadata from the block tables, runs the model once, and samples the
rows that reached their sequence's last token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inferplane.engine import sampler
from inferplane.engine.attention import AttentionMetadata, KVCache
from inferplane.engine.kv_blocks import BlockManager
from inferplane.engine.models.base import CausalLM
from inferplane.engine.scheduler import ScheduledSequence, SchedulerOutput


@dataclass(frozen=True)
class RunnerOutput:
    sampled: dict[str, list[int]]
    """The token drawn for each sequence that reached its end this step."""
    logprobs: dict[str, sampler.TokenLogprobs]
    """For the sampled sequences that asked for logprobs."""


class ModelRunner:
    def __init__(
        self, model: CausalLM, cache: KVCache, blocks: BlockManager, *, device: torch.device
    ) -> None:
        self.model = model
        self.cache = cache
        self.blocks = blocks
        self.device = device
        self.states: dict[str, sampler.SamplingState] = {}
        """Each live sequence's sampling state (params, its generator), kept across steps."""

    @torch.inference_mode()
    def execute(self, out: SchedulerOutput) -> RunnerOutput:
        rows = list(out.scheduled.values())
        if not rows:
            return RunnerOutput({}, {})
        ids: list[int] = []
        positions: list[int] = []
        for row in rows:
            ids.extend(row.seq.token_ids(row.start, row.start + row.num_tokens))
            positions.extend(range(row.start, row.start + row.num_tokens))
        meta = AttentionMetadata.build(
            block_tables=[self.blocks.block_table(row.seq.seq_id) for row in rows],
            computed_lens=[row.start for row in rows],
            query_lens=[row.num_tokens for row in rows],
            block_size=self.blocks.block_size,
            device=self.device,
        )
        hidden = self.model(
            torch.tensor(ids, device=self.device),
            torch.tensor(positions, device=self.device),
            cache=self.cache,
            meta=meta,
        )
        return self._sample(rows, hidden)

    def _sample(self, rows: list[ScheduledSequence], hidden: torch.Tensor) -> RunnerOutput:
        ends = torch.tensor([row.num_tokens for row in rows]).cumsum(0) - 1
        chosen = [i for i, row in enumerate(rows) if row.samples]
        if not chosen:
            return RunnerOutput({}, {})
        logits = self.model.logits(hidden[ends[chosen].to(hidden.device)])
        seq_ids = [rows[i].seq.seq_id for i in chosen]
        result = sampler.sample(logits, [self.states[s] for s in seq_ids])
        tokens = result.token_ids.tolist()
        sampled = {s: [int(t)] for s, t in zip(seq_ids, tokens, strict=True)}
        logprobs = {s: lp for s, lp in zip(seq_ids, result.logprobs, strict=True) if lp is not None}
        return RunnerOutput(sampled, logprobs)
