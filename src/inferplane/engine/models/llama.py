"""The Llama family (Llama, Mistral, Qwen2): RMSNorm, RoPE, grouped-query attention, SwiGLU.

Parameter names match Hugging Face's checkpoints, so `load_state_dict` takes a safetensors
file as it is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inferplane.engine import attention, rope
from inferplane.engine.model_config import ModelConfig


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In float32 as Hugging Face does: bfloat16 variance loses too much.
        x32 = x.to(torch.float32)
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        dim, heads, kv = config.head_dim, config.num_heads, config.num_kv_heads
        self.heads, self.kv_heads, self.head_dim = heads, kv, dim
        self.q_proj = nn.Linear(config.hidden_size, heads * dim, bias=config.qkv_bias)
        self.k_proj = nn.Linear(config.hidden_size, kv * dim, bias=config.qkv_bias)
        self.v_proj = nn.Linear(config.hidden_size, kv * dim, bias=config.qkv_bias)
        self.o_proj = nn.Linear(heads * dim, config.hidden_size, bias=False)

    def fuse(self) -> None:
        """One matmul for q, k and v instead of three (serving only; names stop matching HF)."""
        self.qkv_proj = _fused(self.q_proj, self.k_proj, self.v_proj)
        del self.q_proj, self.k_proj, self.v_proj

    def forward(
        self,
        x: torch.Tensor,
        cos_sin: tuple[torch.Tensor, torch.Tensor],
        *,
        cache: attention.KVCache,
        layer: int,
        meta: attention.AttentionMetadata,
    ) -> torch.Tensor:
        tokens = x.shape[0]
        if hasattr(self, "qkv_proj"):
            sizes = (self.heads * self.head_dim, self.kv_heads * self.head_dim)
            q, k, v = self.qkv_proj(x).split([sizes[0], sizes[1], sizes[1]], dim=-1)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = q.reshape(tokens, self.heads, self.head_dim)
        k = k.reshape(tokens, self.kv_heads, self.head_dim)
        v = v.reshape(tokens, self.kv_heads, self.head_dim)
        q, k = rope.apply(q, *cos_sin), rope.apply(k, *cos_sin)
        out = attention.attend(
            q, k, v, cache=cache, layer=layer, meta=meta, scale=self.head_dim**-0.5
        )
        return self.o_proj(out)


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def fuse(self) -> None:
        """One matmul for gate and up (serving only)."""
        self.gate_up_proj = _fused(self.gate_proj, self.up_proj)
        del self.gate_proj, self.up_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "gate_up_proj"):
            gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
            return self.down_proj(F.silu(gate) * up)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def _fused(*parts: nn.Linear) -> nn.Linear:
    first = parts[0]
    out_features = sum(p.out_features for p in parts)
    fused = nn.Linear(
        first.in_features,
        out_features,
        bias=first.bias is not None,
        device=first.weight.device,
        dtype=first.weight.dtype,
    )
    with torch.no_grad():
        fused.weight.copy_(torch.cat([p.weight for p in parts]))
        if fused.bias is not None:
            fused.bias.copy_(torch.cat([p.bias for p in parts if p.bias is not None]))
    return fused


class DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.self_attn = Attention(config)
        self.mlp = MLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, config.norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        cos_sin: tuple[torch.Tensor, torch.Tensor],
        *,
        cache: attention.KVCache,
        layer: int,
        meta: attention.AttentionMetadata,
    ) -> torch.Tensor:
        x = x + self.self_attn(
            self.input_layernorm(x), cos_sin, cache=cache, layer=layer, meta=meta
        )
        return x + self.mlp(self.post_attention_layernorm(x))


class Backbone(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.norm_eps)


class LlamaForCausalLM(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.model = Backbone(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.finish_loading()

    def finish_loading(self) -> None:
        """Re-tie embeddings and rebuild RoPE tables after weights were assigned (the model
        is built on the meta device, so nothing is allocated twice)."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        with torch.device("cpu"):
            self.rotary = rope.Rotary(
                self.config.head_dim, self.config.rope_theta, self.config.rope_scaling
            )

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        *,
        cache: attention.KVCache,
        meta: attention.AttentionMetadata,
    ) -> torch.Tensor:
        """Hidden states [T, hidden] of the step's tokens, after the final norm."""
        x = self.model.embed_tokens(input_ids)
        cos_sin = self.rotary.cos_sin(positions, x.dtype)
        for index, layer in enumerate(self.model.layers):
            x = layer(x, cos_sin, cache=cache, layer=index, meta=meta)
        return self.model.norm(x)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden).float()

    def fuse_projections(self) -> None:
        """Fewer, larger matmuls for serving: small batches are dispatch-bound on a CPU."""
        for layer in self.model.layers:
            assert isinstance(layer, DecoderLayer)
            layer.self_attn.fuse()
            layer.mlp.fuse()
