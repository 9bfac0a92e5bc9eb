"""Loading a Hugging Face model folder: config, safetensors weights, in the wanted dtype."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from inferplane.engine.model_config import ModelConfig, UnsupportedModelError, load_config
from inferplane.engine.models import gpt2, llama
from inferplane.engine.models.base import CausalLM

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "llama": llama.LlamaForCausalLM,
    "gpt2": gpt2.GPT2LMHeadModel,
}


def load_model(
    folder: Path, *, dtype: torch.dtype = torch.float32, device: str = "cpu"
) -> tuple[CausalLM, ModelConfig]:
    """The model with its weights, in eval mode, and its config."""
    config = load_config(folder)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise UnsupportedModelError(f"{folder} has no *.safetensors weights")
    with torch.device("meta"):
        model = ARCHITECTURES[config.family](config)
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(str(file), device=device))
    state = {k: v.to(dtype) for k, v in state.items() if not k.endswith("rotary_emb.inv_freq")}
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    _check(missing, unexpected, config)
    loaded: CausalLM = model.eval()  # type: ignore[assignment]
    loaded.finish_loading()
    return loaded, config


def _check(missing: list[str], unexpected: list[str], config: ModelConfig) -> None:
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    missing = [k for k in missing if k not in tied]
    # Old GPT-2 checkpoints carry their causal-mask buffers; they are not weights.
    unexpected = [k for k in unexpected if not k.endswith((".attn.bias", ".attn.masked_bias"))]
    if missing or unexpected:
        raise UnsupportedModelError(
            f"weights do not match the {config.model_type} architecture: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
