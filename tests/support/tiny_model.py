"""A tiny random Llama model folder with a locally trained BPE tokenizer, for engine tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from inferplane.engine import demo

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
"""A minimal chat template, so /v1/chat/completions works on the tiny folder."""

TINY_DEMO = demo.DemoSpec(
    steps=3,
    batch=2,
    seq_len=32,
    vocab_size=512,
    hidden_size=64,
    intermediate_size=128,
    num_layers=1,
)
"""A demo-model recipe small enough to train in a test (seconds, not minutes)."""


def make_tiny_model(path: Path, *, max_position_embeddings: int = 256) -> Path:
    """Write a 2-layer, 64-wide random Llama (vocabulary 300) and its tokenizer to `path`."""
    import transformers

    config = transformers.LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=300,
        max_position_embeddings=max_position_embeddings,
    )
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(path)
    _write_tokenizer(path)
    return path


def _write_tokenizer(path: Path) -> None:
    bpe = HFTokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        ["hello world"] * 10,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["</s>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    bpe.save(str(path / "tokenizer.json"))
    config = {"eos_token": "</s>", "chat_template": CHAT_TEMPLATE}
    (path / "tokenizer_config.json").write_text(json.dumps(config))


def prebuilt_demo(data_dir: Path) -> Path:
    """Put a TINY_DEMO folder where `inferplane engine --model demo` and `inferplane up`
    look for the full demo model in `data_dir`, so that tests skip minutes of training."""
    path = data_dir / "models" / f"demo-seed0-steps{demo.DemoSpec().steps}"
    if not (path / demo.DONE_MARKER).exists():
        demo.create_demo(path, TINY_DEMO)
    return path
