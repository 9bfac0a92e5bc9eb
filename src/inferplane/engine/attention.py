"""Paged attention on plain torch: K/V live in fixed-size blocks, addressed by block tables.

The cache is one flat tensor of slots per layer (block * block_size + offset). Each step
writes the new tokens' K/V to their slots, then every sequence attends over its own slots,
gathered through its block table. CPU-friendly and exact; a fused kernel can replace
`attend` later without changing the models.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class AttentionMetadata:
    """Where this step's tokens go and what each sequence attends to.

    Tokens of all sequences are concatenated; sequence i owns `query_lens[i]` of them, and
    after this step its cache holds `context_lens[i]` tokens.
    """

    slot_mapping: torch.Tensor
    """[num_tokens] cache slot of each new token."""
    query_lens: list[int]
    context_lens: list[int]
    context_blocks: list[torch.Tensor | None]
    """Per multi-token row: the blocks of its whole context, in position order; None for a
    decode row (batched) and for a prompt with nothing cached (it attends to its own new
    K/V, no gather)."""
    decodes: list[DecodeBatch] = field(default_factory=list)
    """The one-token rows, in at most two batched calls (short contexts and long ones)."""

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
        rows = zip(block_tables, computed_lens, query_lens, strict=True)
        mapping = [
            table[p // block_size] * block_size + p % block_size
            for table, done, new in rows
            for p in range(done, done + new)
        ]
        context_lens = [d + n for d, n in zip(computed_lens, query_lens, strict=True)]
        context_blocks: list[torch.Tensor | None] = [
            torch.tensor(table[: cdiv(length, block_size)], dtype=torch.long, device=device)
            if new > 1 and done > 0
            else None
            for table, done, new, length in zip(
                block_tables, computed_lens, query_lens, context_lens, strict=True
            )
        ]
        decodes = [
            DecodeBatch.build(group, query_lens, context_lens, block_tables, block_size, device)
            for group in _decode_groups(query_lens, context_lens, block_size)
        ]
        slot_mapping = torch.tensor(mapping, dtype=torch.long, device=device)
        return cls(slot_mapping, list(query_lens), context_lens, context_blocks, decodes)


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _decode_groups(
    query_lens: list[int], context_lens: list[int], block_size: int
) -> list[list[int]]:
    """The decode rows, split in two by context length where that saves at least a quarter
    of the padded width: a padded row costs a gather and attention like a real one, and
    contexts of running requests spread widely (measured: 57 % of one padded batch useful)."""
    rows = sorted((i for i, n in enumerate(query_lens) if n == 1), key=context_lens.__getitem__)
    if len(rows) < 4:
        return [rows] if rows else []
    widths = [cdiv(context_lens[i], block_size) for i in rows]
    whole = len(rows) * widths[-1]
    best, split = whole, len(rows)
    for cut in range(1, len(rows)):
        cost = cut * widths[cut - 1] + (len(rows) - cut) * widths[-1]
        if cost < best:
            best, split = cost, cut
    if best > 0.75 * whole:
        return [rows]
    return [rows[:split], rows[split:]]


@dataclass
class DecodeBatch:
    """One-token rows padded to one length in whole blocks, so they cost one gather and one
    attention call per layer instead of one per sequence. Gathering whole blocks copies runs
    of block_size * kv_heads * head_dim values instead of one token's at a time."""

    tokens: torch.Tensor
    """[B] positions of the rows' tokens in the step's token batch."""
    blocks: torch.Tensor
    """[B * blocks of the longest context] block ids, row-major, padded with block 0."""
    bias: torch.Tensor
    """[B, 1, 1, width]: 0 where a slot is part of that row's context, -inf past it."""

    @property
    def width(self) -> int:
        return self.bias.shape[-1]

    @classmethod
    def build(
        cls,
        rows: list[int],
        query_lens: list[int],
        context_lens: list[int],
        block_tables: list[list[int]],
        block_size: int,
        device: torch.device | str,
    ) -> DecodeBatch:
        num_blocks = cdiv(max(context_lens[i] for i in rows), block_size)
        width = num_blocks * block_size
        blocks = [b for i in rows for b in (block_tables[i] + [0] * num_blocks)[:num_blocks]]
        lengths = torch.tensor([context_lens[i] for i in rows])
        past = torch.arange(width)[None, :] >= lengths[:, None]
        bias = torch.zeros(len(rows), width).masked_fill_(past, float("-inf"))
        starts = [0, *itertools.accumulate(query_lens)]
        return cls(
            torch.tensor([starts[i] for i in rows], dtype=torch.long, device=device),
            torch.tensor(blocks, dtype=torch.long, device=device),
            bias[:, None, None, :].to(device),
        )


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

    def gather(self, layer: int, blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """K and V of whole blocks, in the order given: [len(blocks) * block_size, kv, dim]."""
        _, slots, kv_heads, dim = self.k.shape
        shape = (slots // self.block_size, self.block_size * kv_heads * dim)
        keys = self.k[layer].view(shape).index_select(0, blocks)
        values = self.v[layer].view(shape).index_select(0, blocks)
        return keys.view(-1, kv_heads, dim), values.view(-1, kv_heads, dim)

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
    for batch in meta.decodes:
        out[batch.tokens] = _attend_decodes(q[batch.tokens], cache, layer, batch, scale)
    start = 0
    for query_len, context_len, blocks in zip(
        meta.query_lens, meta.context_lens, meta.context_blocks, strict=True
    ):
        if query_len > 1:
            span = slice(start, start + query_len)
            if blocks is not None:
                k_ctx, v_ctx = cache.gather(layer, blocks)
                k_span, v_span = k_ctx[:context_len], v_ctx[:context_len]
            else:
                k_span, v_span = k[span], v[span]
            result = _attend_prefill(q[span], k_span, v_span, causal=blocks is None, scale=scale)
            out[span] = result.reshape(query_len, -1)
        start += query_len
    return out


def _attend_prefill(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float
) -> torch.Tensor:
    """One multi-token row, q: [new, heads, dim] against k, v: [context, kv_heads, dim] —
    its own new tokens (causal), or its whole context when part of it was computed before
    (a later chunk, or a prefix-cache hit). Inputs get a batch dimension: torch's CPU flash
    kernel takes only 4-D ones, and 3-D falls back to the math path, ~20x slower on a
    480-token prompt (measured)."""
    mask = None if causal else _causal_mask(q.shape[0], k.shape[0], q.device)
    result = F.scaled_dot_product_attention(
        q.transpose(0, 1)[None],
        k.transpose(0, 1)[None],
        v.transpose(0, 1)[None],
        attn_mask=mask,
        is_causal=causal,
        scale=scale,
        enable_gqa=True,
    )
    return result[0].transpose(0, 1)


def _attend_decodes(
    q: torch.Tensor, cache: KVCache, layer: int, batch: DecodeBatch, scale: float
) -> torch.Tensor:
    """q: [B, heads, dim], one query per row, over contexts padded to the longest. (Plain
    batched matmuls instead of scaled_dot_product_attention measured twice as slow here.)"""
    rows, heads, dim = q.shape
    k_ctx, v_ctx = cache.gather(layer, batch.blocks)
    shape = (rows, batch.width, cache.k.shape[2], dim)
    keys, values = k_ctx.view(shape).transpose(1, 2), v_ctx.view(shape).transpose(1, 2)
    result = F.scaled_dot_product_attention(
        q.unsqueeze(2), keys, values, attn_mask=batch.bias.to(q.dtype), scale=scale, enable_gqa=True
    )
    return result.reshape(rows, heads * dim)


def _causal_mask(query_len: int, context_len: int, device: torch.device) -> torch.Tensor:
    """Query i sits at position context_len - query_len + i and sees keys up to it."""
    first = context_len - query_len
    rows = torch.arange(query_len, device=device)[:, None] + first
    cols = torch.arange(context_len, device=device)[None, :]
    return cols <= rows
