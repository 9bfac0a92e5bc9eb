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

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text).ids)

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> list[Embedding]:
        encodings = [self.tokenizer.encode(text) for text in texts]
        length = max(len(e.ids) for e in encodings)
        ids = torch.zeros(len(texts), length, dtype=torch.long)
        mask = torch.zeros(len(texts), length, dtype=torch.long)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = torch.tensor(encoding.ids)
            mask[row, : len(encoding.ids)] = 1
        states = self.model(ids.to(self.device), mask.to(self.device))
        pooled = _pool(states, mask.to(self.device), self.pooling)
        if self.normalize:
            pooled = F.normalize(pooled, p=2, dim=1)
        return [
            Embedding(vector.tolist(), len(e.ids))
            for vector, e in zip(pooled, encodings, strict=True)
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
