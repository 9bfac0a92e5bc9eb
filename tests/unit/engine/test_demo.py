"""The offline demo model: a loadable, deterministic Llama folder (trained briefly here)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
from safetensors.torch import load_file

from inferplane.engine import demo
from inferplane.engine.loader import load_model
from inferplane.engine.tokenizer import Tokenizer
from tests.support.tiny_model import TINY_DEMO as TINY


def test_the_demo_folder_loads_and_chats(tmp_path: Path) -> None:
    losses: list[float] = []
    demo.create_demo(tmp_path, TINY, progress=lambda step, total, loss: losses.append(loss))
    _model, config = load_model(tmp_path)
    tokenizer = Tokenizer(tmp_path)
    assert len(losses) == 3 and all(loss == loss for loss in losses), "progress every step"
    assert config.vocab_size == tokenizer.vocab_size == 512
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is a list?"}])
    assert prompt.startswith("<s><|user|>") and prompt.endswith("<|assistant|>\n")
    assert tokenizer.decode(tokenizer.encode("for loop")) == "for loop"
    assert config.eos_token_ids == (tokenizer.eos_token_id,)


def test_the_same_seed_makes_the_same_model(tmp_path: Path) -> None:
    first = load_file(str(demo.create_demo(tmp_path / "a", TINY) / "model.safetensors"))
    second = load_file(str(demo.create_demo(tmp_path / "b", TINY) / "model.safetensors"))
    other_seed = demo.DemoSpec(**{**TINY.__dict__, "seed": 1})
    third = load_file(str(demo.create_demo(tmp_path / "c", other_seed) / "model.safetensors"))
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], third[k]) for k in first)


def test_ensure_demo_reuses_the_cached_folder(tmp_path: Path) -> None:
    path = demo.ensure_demo(tmp_path, TINY)
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert demo.ensure_demo(tmp_path, TINY) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp


def _note_trainer(log: Path, step: int, total: int, loss: float) -> None:
    with log.open("a") as out:
        out.write(f"{os.getpid()}\n")


def test_concurrent_builds_train_once_and_make_one_whole_folder(tmp_path: Path) -> None:
    """Two processes asking at once (the two engines of `inferplane up`): one trains, the
    other waits for it and reuses the folder, which is never seen half-written."""
    import multiprocessing

    log = tmp_path / "trainers.log"
    progress = functools.partial(_note_trainer, log)
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        calls = [(tmp_path, TINY), (tmp_path, TINY)]
        paths = pool.starmap(functools.partial(demo.ensure_demo, progress=progress), calls)
    assert paths[0] == paths[1] == demo.demo_path(tmp_path, TINY)
    assert (paths[0] / demo.DONE_MARKER).exists()
    assert len(set(log.read_text().split())) == 1, "only one process trained"
    folders = [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")]
    assert folders == [paths[0].name]
