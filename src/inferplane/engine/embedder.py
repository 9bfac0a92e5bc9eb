"""Sentence embeddings from a sentence-transformers folder: encoder, pooling, normalisation.

Reads what sentence-transformers reads (modules.json, 1_Pooling/config.json,
sentence_bert_config.json), so mean/CLS/max pooling, the max sequence length and the
Normalize module behave exactly as sentence-transformers does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer as HFTokenizer

from inferplane.engine.models.bert import BertConfig, BertModel


@dataclass(frozen=True)
class Embedding:
    vector: list[float]
    tokens: int


class Embedder:
    def __init__(self, folder: Path, *, device: str = "cpu") -> None:
        config = BertConfig.from_json(json.loads((folder / "config.json").read_text()))
        self.model = BertModel(config)
        state = {
            k: v
            for k, v in load_file(str(folder / "model.safetensors")).items()
            if not k.startswith("pooler.") and k != "embeddings.position_ids"
        }
        self.model.load_state_dict(state, strict=True)
        self.model.eval().to(device)
        self.device = device
        self.tokenizer = HFTokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.max_length = int(
            _json(folder / "sentence_bert_config.json").get("max_seq_length", 512)
        )
        self.tokenizer.enable_truncation(self.max_length)
        self.pooling = _pooling_mode(_json(folder / "1_Pooling" / "config.json"))
        modules = _json_list(folder / "modules.json")
        self.normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
        self.dimensions = config.hidden_size
        self.vocab_size = config.vocab_size

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text).ids)

    def embed(self, texts: list[str]) -> list[Embedding]:
        return self.embed_ids([self.tokenizer.encode(text).ids for text in texts])

    @torch.inference_mode()
    def embed_ids(self, sequences: list[list[int]]) -> list[Embedding]:
        """Token-id sequences taken as they are (special tokens included), cut at max_length."""
        sequences = [list(seq[: self.max_length]) for seq in sequences]
        length = max(len(seq) for seq in sequences)
        ids = torch.zeros(len(sequences), length, dtype=torch.long)
        mask = torch.zeros(len(sequences), length, dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        states = self.model(ids.to(self.device), mask.to(self.device))
        pooled = _pool(states, mask.to(self.device), self.pooling)
        if self.normalize:
            pooled = F.normalize(pooled, p=2, dim=1)
        return [
            Embedding(vector.tolist(), len(seq))
            for vector, seq in zip(pooled, sequences, strict=True)
        ]


def _pool(states: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "cls":
        return states[:, 0]
    weights = mask[:, :, None].to(states.dtype)
    if mode == "max":
        return states.masked_fill(weights == 0, -1e9).max(dim=1).values
    summed = (states * weights).sum(dim=1)
    return summed / weights.sum(dim=1).clamp(min=1e-9)


def _pooling_mode(config: dict[str, Any]) -> str:
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_max_tokens"):
        return "max"
    return "mean"


def _json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def _json_list(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text())) if path.exists() else []


def is_embedding_folder(folder: Path) -> bool:
    """A sentence-transformers folder (modules.json) or a BERT encoder (config.json
    `model_type: bert`): served as embeddings, not text generation."""
    if (folder / "modules.json").exists():
        return True
    return _json(folder / "config.json").get("model_type") == "bert"
