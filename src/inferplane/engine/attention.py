"""Paged attention on plain torch: K/V live in fixed-size blocks, addressed by block tables.

The cache is one flat tensor of slots per layer (block * block_size + offset). Each step
writes the new tokens' K/V to their slots, then every sequence attends over its own slots,
gathered through its block table. CPU-friendly and exact; a fused kernel can replace
`attend` later without changing the models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AttentionMetadata:
    """Where this step's tokens go and what each sequence attends to.

    Tokens of all sequences are concatenated; sequence i owns `query_lens[i]` of them, and
    after this step its cache holds `context_lens[i]` tokens at `context_slots[i]`.
    """

    slot_mapping: torch.Tensor
    """[num_tokens] cache slot of each new token."""
    query_lens: list[int]
    context_lens: list[int]
    context_slots: list[torch.Tensor]
    """Per sequence: [context_len] slots of its whole context, in position order."""
    decodes: DecodeBatch | None = None
    """The one-token rows, attended in one batched call (None when fewer than two)."""

    @classmethod
    def build(
        cls,
        *,
        block_tables: list[list[int]],
        computed_lens: list[int],
        query_lens: list[int],
        block_size: int,
        device: torch.device | str = "cpu",
    ) -> AttentionMetadata:
        """From the scheduler's view: tokens already cached and tokens computed now."""
        context_slots: list[torch.Tensor] = []
        new_slots: list[torch.Tensor] = []
        for table, done, new in zip(block_tables, computed_lens, query_lens, strict=True):
            blocks = torch.tensor(table, dtype=torch.long, device=device)
            offsets = torch.arange(block_size, dtype=torch.long, device=device)
            slots = (blocks[:, None] * block_size + offsets).flatten()[: done + new]
            context_slots.append(slots)
            new_slots.append(slots[done:])
        context_lens = [d + n for d, n in zip(computed_lens, query_lens, strict=True)]
        mapping = torch.cat(new_slots) if new_slots else torch.empty(0, dtype=torch.long)
        decodes = DecodeBatch.build(query_lens, context_lens, context_slots, device=device)
        return cls(mapping, list(query_lens), context_lens, context_slots, decodes)


@dataclass
class DecodeBatch:
    """Decode rows padded to one length, so a step's decodes cost one attention call per
    layer instead of one per sequence (the common case once requests are running)."""

    rows: list[int]
    """Indexes (into the step's sequences) of the one-token rows."""
    tokens: torch.Tensor
    """[B] positions of those rows' tokens in the step's token batch."""
    slots: torch.Tensor
    """[B, longest context] cache slots, padded with slot 0."""
    mask: torch.Tensor
    """[B, 1, 1, longest context]: True where a slot is part of that row's context."""

    @classmethod
    def build(
        cls,
        query_lens: list[int],
        context_lens: list[int],
        context_slots: list[torch.Tensor],
        *,
        device: torch.device | str,
    ) -> DecodeBatch | None:
        rows = [i for i, n in enumerate(query_lens) if n == 1]
        if len(rows) < 2:
            return None
        starts = torch.tensor([0, *query_lens[:-1]], device=device).cumsum(0)
        slots = torch.nn.utils.rnn.pad_sequence(
            [context_slots[i] for i in rows], batch_first=True, padding_value=0
        )
        lengths = torch.tensor([context_lens[i] for i in rows], device=device)
        mask = torch.arange(slots.shape[1], device=device)[None, :] < lengths[:, None]
        return cls(rows, starts[rows], slots, mask[:, None, None, :])


class KVCache:
    """K and V for every layer: [layers, num_blocks * block_size, kv_heads, head_dim]."""

    def __init__(
        self,
        *,
        num_layers: int,
        num_blocks: int,
        block_size: int,
        num_kv_heads: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device | str = "cpu",
    ) -> None:
        shape = (num_layers, num_blocks * block_size, num_kv_heads, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.block_size = block_size

    @staticmethod
    def bytes_per_block(
        *, num_layers: int, block_size: int, num_kv_heads: int, head_dim: int, dtype: torch.dtype
    ) -> int:
        """What one block costs across all layers, K and V: sizes `--kv-cache-memory`."""
        element = torch.tensor([], dtype=dtype).element_size()
        return 2 * num_layers * block_size * num_kv_heads * head_dim * element


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    cache: KVCache,
    layer: int,
    meta: AttentionMetadata,
    scale: float,
) -> torch.Tensor:
    """q: [T, heads, dim]; k, v: [T, kv_heads, dim] for the new tokens. Returns [T, heads*dim]."""
    cache.k[layer].index_copy_(0, meta.slot_mapping, k)
    cache.v[layer].index_copy_(0, meta.slot_mapping, v)
    out = q.new_empty(q.shape[0], q.shape[1] * q.shape[2])
    batched = set(meta.decodes.rows) if meta.decodes is not None else set()
    if meta.decodes is not None:
        out[meta.decodes.tokens] = _attend_decodes(q, cache, layer, meta.decodes, scale)
    start = 0
    for row, (query_len, context_len, slots) in enumerate(
        zip(meta.query_lens, meta.context_lens, meta.context_slots, strict=True)
    ):
        if row not in batched:
            query = q[start : start + query_len].transpose(0, 1)  # [heads, q, dim]
            keys = cache.k[layer].index_select(0, slots).transpose(0, 1)  # [kv_heads, ctx, dim]
            values = cache.v[layer].index_select(0, slots).transpose(0, 1)
            mask = _causal_mask(query_len, context_len, q.device)
            result = F.scaled_dot_product_attention(
                query, keys, values, attn_mask=mask, scale=scale, enable_gqa=True
            )
            out[start : start + query_len] = result.transpose(0, 1).reshape(query_len, -1)
        start += query_len
    return out


def _attend_decodes(
    q: torch.Tensor, cache: KVCache, layer: int, batch: DecodeBatch, scale: float
) -> torch.Tensor:
    query = q[batch.tokens].unsqueeze(2)  # [B, heads, 1, dim]
    keys = cache.k[layer][batch.slots].transpose(1, 2)  # [B, kv_heads, ctx, dim]
    values = cache.v[layer][batch.slots].transpose(1, 2)
    result = F.scaled_dot_product_attention(
        query, keys, values, attn_mask=batch.mask, scale=scale, enable_gqa=True
    )
    return result.squeeze(2).reshape(len(batch.rows), -1)


def _causal_mask(query_len: int, context_len: int, device: torch.device) -> torch.Tensor | None:
    """Query i sits at position context_len - query_len + i and sees keys up to it."""
    if query_len == 1:
        return None
    first = context_len - query_len
    rows = torch.arange(query_len, device=device)[:, None] + first
    cols = torch.arange(context_len, device=device)[None, :]
    return cols <= rows
