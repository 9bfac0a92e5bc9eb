"""`inferplane up`'s demo objects and its one-time build of the demo model."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from inferplane.api import registry
from inferplane.cli import updemo
from inferplane.engine import demo
from tests.support.tiny_model import TINY_DEMO


def test_the_demo_model_is_built_once_where_the_engine_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Path] = []
    real_create = demo.create_demo

    def create(path: Path, spec: demo.DemoSpec, **kwargs: object) -> Path:
        built.append(path)
        return real_create(path, TINY_DEMO, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(demo, "create_demo", create)
    console = Console(file=io.StringIO())
    path = updemo.build_demo(tmp_path, console)
    # demo.ensure_demo (what `inferplane engine --model demo` calls) finds it, builds nothing.
    assert demo.ensure_demo(tmp_path, demo.DemoSpec()) == path
    assert (path / demo.DONE_MARKER).exists()
    assert updemo.build_demo(tmp_path, console) == path
    assert len(built) == 1
    left = sorted(p.name for p in (tmp_path / "models").iterdir() if p.suffix != ".lock")
    assert left == [path.name], "no scratch folder is left behind"


def test_the_demo_objects_are_valid_resources() -> None:
    objects = updemo.demo_objects(2)
    assert [o["kind"] for o in objects] == ["Model", "Deployment", "Service"]
    for obj in objects:
        registry.lookup(obj["kind"]).model.model_validate(obj)
    deployment = objects[1]["spec"]
    assert deployment["placement"] == {"strategy": "spread", "spreadLabel": "region"}
    assert "--served-model-name" in deployment["engine"]["args"]


def test_the_demo_deployment_autoscales_from_its_replicas_up_to_four() -> None:
    scaled = updemo.demo_objects(2)[1]["spec"]["autoscaling"]
    assert (scaled["minReplicas"], scaled["maxReplicas"], scaled["target"]) == (2, 4, 4)
    to_zero = updemo.demo_objects(0)[1]["spec"]["autoscaling"]
    assert to_zero["minReplicas"] == 0, "--replicas 0 lets the demo scale to zero"
    assert updemo.demo_objects(6)[1]["spec"]["autoscaling"]["maxReplicas"] == 6
