"""Recipes are data: each renders a launch that injects only port, model path and devices."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from inferplane.agent import recipes, sources
from inferplane.agent.runtime import base
from inferplane.api import replicas


def spec(**engine: Any) -> replicas.ReplicaSpec:
    return replicas.ReplicaSpec.model_validate(
        {
            "deployment": "chat",
            "model": {"name": "m", "version": "v1", "source": "file:///models/m"},
            "engine": engine,
            "cluster": "eu-1",
            "pool": "eu-1-cpu",
        }
    )


def launch(environ: dict[str, str] | None = None, **engine: Any) -> Any:
    return recipes.launch_for(
        "team-a/chat-0",
        spec(**engine),
        host="10.0.0.5",
        model_path="/models/m",
        devices="0,1",
        environ=environ or {},
    )


def test_the_reference_recipe_runs_this_python() -> None:
    made = launch(recipe="reference")
    assert made.argv(8001) == [
        sys.executable, "-m", "inferplane", "engine", "--model", "/models/m",
        "--host", "10.0.0.5", "--port", "8001",
    ]  # fmt: skip
    assert made.env == {"CUDA_VISIBLE_DEVICES": "0,1"}
    assert made.port is None and made.health_path == "/health"
    assert made.name == "team-a/chat-0"


@pytest.mark.parametrize(
    ("recipe", "head"),
    [
        ("vllm", ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server", "--model"]),
        ("sglang", ["/venv/bin/python", "-m", "sglang.launch_server", "--model-path"]),
        ("llamacpp", ["llama-server", "--model"]),
        ("tgi", ["text-generation-launcher", "--model-id"]),
    ],
)
def test_external_recipes_pass_the_users_args_untouched(recipe: str, head: list[str]) -> None:
    args = ["--tensor-parallel-size=2", '{"temperature": 0.5}', "--x={port}"]
    environ = {"INFERPLANE_VLLM_PYTHON": "/venv/bin/python"}
    environ["INFERPLANE_SGLANG_PYTHON"] = "/venv/bin/python"
    made = launch(environ, recipe=recipe, args=args)
    argv = made.argv(9000)
    assert argv[: len(head)] == head
    assert "/models/m" in argv and "9000" in argv and "10.0.0.5" in argv
    assert argv[-3:] == args  # appended verbatim: no placeholder is filled in user args


def test_engine_env_is_kept_and_the_devices_are_the_agents_to_set() -> None:
    made = launch(env={"HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "7"})
    assert made.env == {"HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "0,1"}


def test_custom_engines_use_their_command_and_port() -> None:
    made = launch(recipe="custom", command=["my-server", "--weights={model_path}"], port=7000)
    assert made.port == 7000
    assert made.argv(7000) == ["my-server", "--weights=/models/m"]
    with pytest.raises(recipes.LaunchError, match="no \\{port\\}"):
        launch(recipe="custom", command=["my-server"])


def test_a_command_overrides_the_recipes_and_paths_override_its_probes() -> None:
    made = launch(
        recipe="vllm", command=["vllm", "serve", "{model_path}", "--port", "{port}"],
        healthPath="/ready", metricsPath="/stats",
    )  # fmt: skip
    assert made.argv(1) == ["vllm", "serve", "/models/m", "--port", "1"]
    assert made.health_path == "/ready"
    assert recipes.metrics_path(spec(metricsPath="/stats").engine) == "/stats"
    assert recipes.metrics_path(spec(recipe="vllm").engine) == "/metrics"


def test_every_recipe_of_the_api_has_an_entry() -> None:
    assert set(recipes.RECIPES) == {"reference", "vllm", "sglang", "llamacpp", "tgi", "custom"}


def test_fingerprints_follow_what_would_run() -> None:
    assert launch().fingerprint() == launch().fingerprint()
    assert launch().fingerprint() != launch(args=["--max-num-seqs", "8"]).fingerprint()


def test_file_sources_resolve_to_folders_on_the_cluster(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    assert sources.model_path(f"file://{folder}", builtin_ok=False) == str(folder)
    with pytest.raises(sources.SourceError, match="does not exist on this cluster"):
        sources.model_path(f"file://{tmp_path}/missing", builtin_ok=False)
    assert sources.model_path("file://demo", builtin_ok=True) == "demo"
    with pytest.raises(sources.SourceError, match="reference engine only"):
        sources.model_path("file://demo", builtin_ok=False)
    with pytest.raises(sources.SourceError, match="names a folder on the cluster"):
        sources.model_path("file://otherhost/models/x", builtin_ok=False)


@pytest.mark.parametrize("source", ["hf://org/model", "s3://bucket/m", "https://x.io/m"])
def test_remote_sources_fail_with_what_to_do(source: str) -> None:
    with pytest.raises(sources.SourceError, match="stage the weights on the cluster"):
        sources.model_path(source, builtin_ok=True)


@pytest.mark.parametrize(
    ("recipe", "variable"),
    [
        ("reference", "INFERPLANE_ENGINE_API_KEY"),
        ("vllm", "VLLM_API_KEY"),
        ("llamacpp", "LLAMA_API_KEY"),
        ("tgi", "API_KEY"),
    ],
)
def test_the_api_key_goes_in_the_engines_own_variable(recipe: str, variable: str) -> None:
    made = launch(recipe=recipe, env={variable: "the-users"})
    keyed = recipes.RECIPES[recipe].with_api_key(made, "tok-1")
    assert keyed.environment()[variable] == "tok-1"  # the token wins over spec.engine.env
    assert "tok-1" not in keyed.argv(9000)  # not in `ps`
    assert keyed.fingerprint() != made.fingerprint()  # the engine is replaced to take one
    assert "tok-1" not in json.dumps(keyed.to_dict()) + repr(keyed)  # nor in the state file
    other = recipes.RECIPES[recipe].with_api_key(made, "tok-2")
    assert other.fingerprint() == keyed.fingerprint()  # the fingerprint holds no token


def test_sglang_reads_no_variable_so_the_flag_carries_the_key() -> None:
    made = launch(
        {"INFERPLANE_SGLANG_PYTHON": "/venv/bin/python"}, recipe="sglang", args=["--tp=2"]
    )
    keyed = recipes.RECIPES["sglang"].with_api_key(made, "tok-1")
    assert keyed.argv(9000)[-3:] == ["--api-key", "tok-1", "--tp=2"]  # user args stay last
    assert keyed.env == made.env
    assert "tok-1" not in json.dumps(keyed.to_dict())


def test_a_launch_read_back_without_its_token_cannot_be_started() -> None:
    keyed = recipes.RECIPES["reference"].with_api_key(launch(recipe="reference"), "tok-1")
    restored = base.Launch.from_dict(keyed.to_dict())
    assert restored.needs_token and restored.token is None
    assert restored.fingerprint() == keyed.fingerprint()
    with pytest.raises(base.RuntimeFailure, match="needs its engine token"):
        restored.environment()
    assert not launch(recipe="reference").needs_token


def test_only_llamacpp_guards_its_metrics() -> None:
    guarded = {
        name for name, r in recipes.RECIPES.items() if r.api_key and r.api_key.metrics_need_key
    }
    assert guarded == {"llamacpp"}


def test_custom_engines_cannot_take_an_api_key() -> None:
    made = launch(recipe="custom", command=["my-server"], port=7000)
    with pytest.raises(recipes.LaunchError, match="custom engine cannot require an API key"):
        recipes.RECIPES["custom"].with_api_key(made, "tok-1")


@pytest.mark.parametrize("arg", ["--api-key", "--api-key=mine"])
def test_a_replica_that_sets_its_own_api_key_is_refused(arg: str) -> None:
    made = launch(recipe="vllm", args=[arg, "mine"] if arg == "--api-key" else [arg])
    with pytest.raises(recipes.LaunchError, match=r"spec\.engine\.args sets --api-key"):
        recipes.RECIPES["vllm"].with_api_key(made, "tok-1")
