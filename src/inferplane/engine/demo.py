"""The demo model, made offline: a small Llama trained for a minute or two on this CPU.

Nothing can be fetched from a model hub, so the engine's own model is built here: a
byte-level BPE tokenizer and a 4-layer Llama trained on English that ships with Python (the
pydoc topics: the language reference's prose), until its output is recognisable words. The
same seed on the same machine gives the same folder.
"""

from __future__ import annotations

import fcntl
import json
import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from inferplane.engine.attention import AttentionMetadata, KVCache
from inferplane.engine.model_config import ModelConfig
from inferplane.engine.models.llama import LlamaForCausalLM

SPECIAL = ["<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
DONE_MARKER = ".complete"
Progress = Callable[[int, int, float], None]
"""Called after each training step with (step, total steps, loss)."""


@dataclass(frozen=True)
class DemoSpec:
    seed: int = 0
    vocab_size: int = 2048
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 704
    context: int = 512
    steps: int = 240
    batch: int = 16
    seq_len: int = 128
    learning_rate: float = 3e-3


def corpus() -> str:
    """English prose every CPython carries: the pydoc topics of the language reference."""
    from pydoc_data import topics

    return "\n\n".join(topics.topics[key] for key in sorted(topics.topics))


def train_tokenizer(text: str, vocab_size: int) -> HFTokenizer:
    tokenizer = HFTokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(text.split("\n\n"), trainer)
    return tokenizer


def model_config(spec: DemoSpec, *, eos: int) -> ModelConfig:
    return ModelConfig(
        model_type="llama",
        vocab_size=spec.vocab_size,
        hidden_size=spec.hidden_size,
        num_layers=spec.num_layers,
        num_heads=spec.num_heads,
        num_kv_heads=spec.num_kv_heads,
        head_dim=spec.hidden_size // spec.num_heads,
        intermediate_size=spec.intermediate_size,
        max_position=spec.context,
        norm_eps=1e-5,
        tie_word_embeddings=True,
        eos_token_ids=(eos,),
    )


def train(
    model: LlamaForCausalLM, tokens: torch.Tensor, spec: DemoSpec, progress: Progress
) -> None:
    """Next-token training on random windows, through the same paged attention as serving."""
    generator = torch.Generator().manual_seed(spec.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=0.01)
    for step in range(spec.steps):
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, spec)
        starts = torch.randint(
            0, len(tokens) - spec.seq_len - 1, (spec.batch,), generator=generator
        )
        windows = torch.stack([tokens[s : s + spec.seq_len + 1] for s in starts.tolist()])
        loss = _loss(model, windows, spec)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        progress(step + 1, spec.steps, loss.item())


def _learning_rate(step: int, spec: DemoSpec) -> float:
    warmup = max(spec.steps // 20, 1)
    if step < warmup:
        return spec.learning_rate * (step + 1) / warmup
    done = (step - warmup) / max(spec.steps - warmup, 1)
    return spec.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))


def _loss(model: LlamaForCausalLM, windows: torch.Tensor, spec: DemoSpec) -> torch.Tensor:
    batch, length, block = windows.shape[0], spec.seq_len, 16
    per_seq = length // block
    cache = KVCache(
        num_layers=spec.num_layers,
        num_blocks=batch * per_seq,
        block_size=block,
        num_kv_heads=spec.num_kv_heads,
        head_dim=spec.hidden_size // spec.num_heads,
        dtype=torch.float32,
    )
    tables = [list(range(i * per_seq, (i + 1) * per_seq)) for i in range(batch)]
    meta = AttentionMetadata.build(
        block_tables=tables,
        computed_lens=[0] * batch,
        query_lens=[length] * batch,
        block_size=block,
    )
    inputs = windows[:, :-1].reshape(-1)
    positions = torch.arange(length).repeat(batch)
    logits = model.logits(model(inputs, positions, cache=cache, meta=meta))
    return F.cross_entropy(logits, windows[:, 1:].reshape(-1))


def create_demo(path: Path, spec: DemoSpec, *, progress: Progress = lambda *_: None) -> Path:
    """Build the folder at `path` (config, weights, tokenizer with chat template)."""
    torch.manual_seed(spec.seed)
    text = corpus()
    tokenizer = train_tokenizer(text, spec.vocab_size)
    eos = tokenizer.token_to_id("</s>")
    assert eos is not None, "</s> is one of the special tokens the tokenizer was trained with"
    tokens = torch.tensor(tokenizer.encode(text).ids, dtype=torch.long)
    config = model_config(spec, eos=eos)
    model = LlamaForCausalLM(config)
    for name, parameter in model.named_parameters():
        if parameter.dim() > 1:
            torch.nn.init.normal_(parameter, std=0.02)
        elif "norm" not in name:
            torch.nn.init.zeros_(parameter)
    train(model.train(), tokens, spec, progress)
    _write(path, model.eval(), tokenizer, spec, eos)
    return path


def _write(
    path: Path, model: LlamaForCausalLM, tokenizer: HFTokenizer, spec: DemoSpec, eos: int
) -> None:
    path.mkdir(parents=True, exist_ok=True)
    weights = {
        k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"
    }
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save(str(path / "tokenizer.json"))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "num_key_value_heads": spec.num_kv_heads,
        "max_position_embeddings": spec.context,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "bos_token_id": tokenizer.token_to_id("<s>"),
        "eos_token_id": eos,
        "torch_dtype": "float32",
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))
    tokenizer_config = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "chat_template": CHAT_TEMPLATE,
        "model_max_length": spec.context,
    }
    (path / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    (path / "inferplane-demo.json").write_text(json.dumps(asdict(spec), indent=2))
    (path / DONE_MARKER).write_text("ok\n")


def demo_path(data_dir: Path, spec: DemoSpec) -> Path:
    """Where `ensure_demo` keeps the demo folder for `spec`."""
    return data_dir / "models" / f"demo-seed{spec.seed}-steps{spec.steps}"


def ensure_demo(data_dir: Path, spec: DemoSpec, *, progress: Progress = lambda *_: None) -> Path:
    """The cached demo folder for `spec` under the data dir, built on first use.

    Safe to call from several processes at once (two engines of `inferplane up`, say): one
    builds under a lock while the others wait and then reuse it, and the folder appears whole
    — built aside, then renamed — so an interrupted build never passes for a finished one.
    """
    path = demo_path(data_dir, spec)
    if (path / DONE_MARKER).exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f".{path.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (path / DONE_MARKER).exists():
            return path
        scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
        try:
            create_demo(scratch / "model", spec, progress=progress)
            if path.exists():
                shutil.rmtree(path)  # left by a build interrupted before builds were atomic
            (scratch / "model").rename(path)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return path
