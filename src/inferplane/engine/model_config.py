"""A Hugging Face `config.json`, reduced to what the engine's models need."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LLAMA_FAMILY = {"llama": "llama", "mistral": "llama", "qwen2": "llama"}
SUPPORTED = {**LLAMA_FAMILY, "gpt2": "gpt2"}


class UnsupportedModelError(ValueError):
    """The folder holds a model this engine cannot run; the message says which and why."""


@dataclass(frozen=True)
class ModelConfig:
    model_type: str
    """As config.json says: llama, mistral, qwen2 or gpt2."""
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    max_position: int
    norm_eps: float
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] = field(default_factory=dict)
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    """Qwen2 has biases on q/k/v; Llama and Mistral do not."""
    eos_token_ids: tuple[int, ...] = ()

    @property
    def family(self) -> str:
        return SUPPORTED[self.model_type]


def load_config(folder: Path) -> ModelConfig:
    path = folder / "config.json"
    if not path.exists():
        raise UnsupportedModelError(f"{folder} has no config.json: not a Hugging Face model folder")
    raw: dict[str, Any] = json.loads(path.read_text())
    model_type = str(raw.get("model_type", ""))
    if model_type not in SUPPORTED:
        known = ", ".join(sorted(SUPPORTED))
        raise UnsupportedModelError(f"model_type {model_type!r} is not supported; known: {known}")
    if model_type == "gpt2":
        return _gpt2(raw)
    return _llama(raw, model_type)


def _eos(raw: dict[str, Any]) -> tuple[int, ...]:
    eos = raw.get("eos_token_id")
    if eos is None:
        return ()
    return tuple(eos) if isinstance(eos, list) else (int(eos),)


def _rope(raw: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Older configs say rope_theta + rope_scaling; transformers 5 writes rope_parameters."""
    scaling = dict(raw.get("rope_scaling") or raw.get("rope_parameters") or {})
    theta = raw.get("rope_theta") or scaling.pop("rope_theta", None) or 10000.0
    return float(theta), scaling


def _llama(raw: dict[str, Any], model_type: str) -> ModelConfig:
    heads = int(raw["num_attention_heads"])
    theta, scaling = _rope(raw)
    hidden = int(raw["hidden_size"])
    return ModelConfig(
        model_type=model_type,
        vocab_size=int(raw["vocab_size"]),
        hidden_size=hidden,
        num_layers=int(raw["num_hidden_layers"]),
        num_heads=heads,
        num_kv_heads=int(raw.get("num_key_value_heads") or heads),
        head_dim=int(raw.get("head_dim") or hidden // heads),
        intermediate_size=int(raw["intermediate_size"]),
        max_position=int(raw.get("max_position_embeddings", 2048)),
        norm_eps=float(raw.get("rms_norm_eps", 1e-6)),
        rope_theta=theta,
        rope_scaling=scaling,
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", False)),
        qkv_bias=model_type == "qwen2" or bool(raw.get("attention_bias", False)),
        eos_token_ids=_eos(raw),
    )


def _gpt2(raw: dict[str, Any]) -> ModelConfig:
    hidden = int(raw["n_embd"])
    heads = int(raw["n_head"])
    return ModelConfig(
        model_type="gpt2",
        vocab_size=int(raw["vocab_size"]),
        hidden_size=hidden,
        num_layers=int(raw["n_layer"]),
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=hidden // heads,
        intermediate_size=int(raw.get("n_inner") or 4 * hidden),
        max_position=int(raw["n_positions"]),
        norm_eps=float(raw.get("layer_norm_epsilon", 1e-5)),
        tie_word_embeddings=True,
        eos_token_ids=_eos(raw),
    )
