"""GPT-2: learned positions, LayerNorm, fused QKV in Conv1D layout, tanh-GELU MLP.

Parameter names and shapes match Hugging Face's checkpoints (Conv1D keeps weight as
[in, out]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inferplane.engine import attention
from inferplane.engine.model_config import ModelConfig


class Conv1D(nn.Module):
    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(inputs, outputs))
        self.bias = nn.Parameter(torch.zeros(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x, self.weight)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.heads, self.head_dim = config.num_heads, config.head_dim
        self.c_attn = Conv1D(config.hidden_size, 3 * config.hidden_size)
        self.c_proj = Conv1D(config.hidden_size, config.hidden_size)

    def forward(
        self,
        x: torch.Tensor,
        *,
        cache: attention.KVCache,
        layer: int,
        meta: attention.AttentionMetadata,
    ) -> torch.Tensor:
        q, k, v = self.c_attn(x).view(x.shape[0], 3, self.heads, self.head_dim).unbind(1)
        out = attention.attend(
            q, k, v, cache=cache, layer=layer, meta=meta, scale=self.head_dim**-0.5
        )
        return self.c_proj(out)


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.c_fc = Conv1D(config.hidden_size, config.intermediate_size)
        self.c_proj = Conv1D(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.hidden_size, eps=config.norm_eps)
        self.attn = Attention(config)
        self.ln_2 = nn.LayerNorm(config.hidden_size, eps=config.norm_eps)
        self.mlp = MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        *,
        cache: attention.KVCache,
        layer: int,
        meta: attention.AttentionMetadata,
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache=cache, layer=layer, meta=meta)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.hidden_size)
        self.wpe = nn.Embedding(config.max_position, config.hidden_size)
        self.h = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.ln_f = nn.LayerNorm(config.hidden_size, eps=config.norm_eps)


class GPT2LMHeadModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = Transformer(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.finish_loading()

    def finish_loading(self) -> None:
        """GPT-2's output projection is its token embedding."""
        self.lm_head.weight = self.transformer.wte.weight

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        *,
        cache: attention.KVCache,
        meta: attention.AttentionMetadata,
    ) -> torch.Tensor:
        x = self.transformer.wte(input_ids) + self.transformer.wpe(positions)
        for index, block in enumerate(self.transformer.h):
            x = block(x, cache=cache, layer=index, meta=meta)
        return self.transformer.ln_f(x)

    def fuse_projections(self) -> None:
        """GPT-2's checkpoints already fuse q, k and v (c_attn)."""

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden).float()
