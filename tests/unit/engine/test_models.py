"""Our models against Hugging Face transformers on the same random weights (test-only dep).

Each model is checked in one prefill and through the paged cache in chunks and decode steps,
with a scattered block table, so the attention path is exercised as the engine drives it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from inferplane.engine.attention import AttentionMetadata, KVCache
from inferplane.engine.loader import load_model

transformers = pytest.importorskip("transformers")

TINY: dict[str, dict[str, Any]] = {
    "llama": {
        "cls": "LlamaConfig",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 101,
        "max_position_embeddings": 128,
    },
    "llama3-rope-tied": {
        "cls": "LlamaConfig",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "vocab_size": 101,
        "max_position_embeddings": 128,
        "tie_word_embeddings": True,
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        },
    },
    "qwen2": {
        "cls": "Qwen2Config",
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 101,
        "max_position_embeddings": 128,
    },
    "mistral": {
        "cls": "MistralConfig",
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 101,
        "max_position_embeddings": 128,
        "sliding_window": None,
    },
    "gpt2": {
        "cls": "GPT2Config",
        "n_embd": 64,
        "n_layer": 2,
        "n_head": 4,
        "vocab_size": 101,
        "n_positions": 128,
    },
}


def hf_model(name: str, folder: Path) -> Any:
    spec = dict(TINY[name])
    config = getattr(transformers, spec.pop("cls"))(**spec)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    model.save_pretrained(folder)
    return model


def run_chunks(
    model: Any, tokens: list[int], chunks: list[int], *, dtype: torch.dtype
) -> torch.Tensor:
    """Logits of every position, computed chunk by chunk through a scattered paged cache."""
    config = model.config
    cache = KVCache(
        num_layers=config.num_layers,
        num_blocks=16,
        block_size=4,
        num_kv_heads=config.num_kv_heads,
        head_dim=config.head_dim,
        dtype=dtype,
    )
    table = [9, 2, 14, 5, 0, 11]  # deliberately out of order
    done, outputs = 0, []
    for size in chunks:
        meta = AttentionMetadata.build(
            block_tables=[table], computed_lens=[done], query_lens=[size], block_size=4
        )
        ids = torch.tensor(tokens[done : done + size])
        positions = torch.arange(done, done + size)
        with torch.no_grad():
            outputs.append(model.logits(model(ids, positions, cache=cache, meta=meta)))
        done += size
    return torch.cat(outputs)


@pytest.mark.parametrize("name", sorted(TINY))
def test_logits_equal_transformers(name: str, tmp_path: Path) -> None:
    reference = hf_model(name, tmp_path)
    ours, _ = load_model(tmp_path)
    tokens = [3, 17, 42, 8, 99, 1, 0, 56, 23, 77, 5, 64, 31]
    with torch.no_grad():
        expected = reference(torch.tensor([tokens])).logits[0]
    whole = run_chunks(ours, tokens, [len(tokens)], dtype=torch.float32)
    stepped = run_chunks(ours, tokens, [5, 4, 1, 1, 2], dtype=torch.float32)
    torch.testing.assert_close(whole, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(stepped, expected, atol=1e-4, rtol=1e-4)


def test_bfloat16_stays_close_to_float32(tmp_path: Path) -> None:
    hf_model("llama", tmp_path)
    full, _ = load_model(tmp_path)
    half, _ = load_model(tmp_path, dtype=torch.bfloat16)
    tokens = [3, 17, 42, 8, 99, 1, 0, 56]
    exact = run_chunks(full, tokens, [8], dtype=torch.float32)
    rough = run_chunks(half, tokens, [3, 5], dtype=torch.bfloat16)
    assert rough.dtype == torch.float32, "logits are always returned in float32"
    torch.testing.assert_close(rough, exact, atol=0.1, rtol=0.05)
