"""The tokenizer folder format, chat templates and streaming detokenization."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from inferplane.engine.tokenizer import ChatTemplateError, IncrementalDetokenizer, Tokenizer

TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
TEXT = ["naïve café — déjà vu", "hello world, hello tokens", "emoji 🚀 and ümlauts"] * 20


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tok")
    bpe = HFTokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(TEXT, trainer)
    bpe.save(str(path / "tokenizer.json"))
    config = {"eos_token": "</s>", "chat_template": TEMPLATE}
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    return path


def test_round_trip_and_eos(folder: Path) -> None:
    tokenizer = Tokenizer(folder)
    text = "déjà vu 🚀 hello"
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.eos_token_id == 0


def test_chat_template_renders_messages(folder: Path) -> None:
    tokenizer = Tokenizer(folder)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}])
    assert prompt == "<|user|>hi</s><|assistant|>"


def test_a_missing_template_is_a_clear_error(tmp_path: Path, folder: Path) -> None:
    (tmp_path / "tokenizer.json").write_text((folder / "tokenizer.json").read_text())
    with pytest.raises(ChatTemplateError, match="no chat template"):
        Tokenizer(tmp_path).apply_chat_template([{"role": "user", "content": "x"}])


def test_streamed_text_equals_the_whole_decode(folder: Path) -> None:
    tokenizer = Tokenizer(folder)
    for text in ("naïve café — déjà vu 🚀", "emoji 🚀🚀 ümlauts hello world"):
        stream = IncrementalDetokenizer(tokenizer)
        pieces = [stream.add(token) for token in tokenizer.encode(text)]
        assert "".join(pieces) == text
        assert all("\ufffd" not in piece for piece in pieces)
