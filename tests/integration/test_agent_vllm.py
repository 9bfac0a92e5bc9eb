"""The `vllm` recipe against a real vLLM: the CPU build from PyPI, in the virtual environment
`make bench-peers` makes outside the checkout (~/.cache/inferplane-bench/vllm-venv).

vLLM takes a minute or two to start on a small CPU machine, so this test is slow; it is
skipped, saying why, where that environment is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from inferplane import client as api_client
from inferplane.engine import demo
from tests.support import engine_tokens
from tests.support.agent_process import AgentProcess
from tests.support.control import ControlProcess
from tests.support.engine_process import wait_for

VLLM_VENV = Path(
    os.environ.get("INFERPLANE_VLLM_VENV", Path.home() / ".cache/inferplane-bench/vllm-venv")
)
STAMP = VLLM_VENV / ".inferplane-installed"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        not STAMP.exists(),
        reason=f"no vLLM virtual environment at {VLLM_VENV} (make bench-peers makes it)",
    ),
]

# A 2-layer Llama with a head size of 64, which vLLM's CPU attention takes.
TINY_LLAMA = demo.DemoSpec(
    steps=20, batch=4, seq_len=64, vocab_size=512, hidden_size=128, num_heads=2,
    num_kv_heads=1, intermediate_size=256, num_layers=2,
)  # fmt: skip


@pytest.fixture
def control(tmp_path: Path) -> Iterator[ControlProcess]:
    process = ControlProcess(tmp_path / "control", extra_args=["--no-controllers"])
    process.start()
    yield process
    process.stop()


@pytest.mark.timeout(900)
def test_the_vllm_recipe_serves_through_a_real_vllm(
    control: ControlProcess, tmp_path: Path
) -> None:
    model = demo.create_demo(tmp_path / "tiny-llama", TINY_LLAMA)
    agent = AgentProcess(
        control.url,
        control.admin_token,
        "vllm-plane",
        tmp_path / "agent",
        env={"INFERPLANE_VLLM_PYTHON": str(VLLM_VENV / "bin" / "python")},
    )
    agent.start()
    try:
        with api_client.Client(control.url, control.admin_token) as api:
            api.create(vllm_replica(model))
            api.patch("Replica", "chat-0", {"status": {"phase": "Scheduled"}}, subresource="status")
            wait_for(
                lambda: _status(api).get("phase") == "Ready",
                timeout=600,
                what=f"vLLM to turn Ready: {_status(api)}\n{agent.log()[-3000:]}",
            )
            url = _status(api)["url"]
            token = engine_tokens.engine_token(api, api.get("Replica", "chat-0"))
            headers = {"Authorization": f"Bearer {token}"}
            served = httpx.get(f"{url}/v1/models", headers=headers, timeout=10).json()["data"]
            assert [m["id"] for m in served] == ["tiny-chat"]  # the user's flag reached vLLM
            assert httpx.get(f"{url}/v1/models", timeout=10).status_code == 401  # VLLM_API_KEY
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0)
            with client:
                answer = client.completions.create(
                    model="tiny-chat", prompt="The meaning of", max_tokens=8, temperature=0
                )
            assert answer.choices[0].text
            assert answer.usage is not None and answer.usage.completion_tokens > 0
            # vLLM's metric names feed the load the agent reports.
            wait_for(
                lambda: (_status(api).get("load") or {}).get("observedTime") is not None,
                timeout=60,
                what="a load report",
            )
    finally:
        agent.stop(timeout=120)


def vllm_replica(model: Path) -> dict[str, Any]:
    venv_bin = VLLM_VENV / "bin"
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Replica",
        "metadata": {"name": "chat-0", "namespace": "default"},
        "spec": {
            "deployment": "chat",
            "model": {"name": "tiny", "version": "v1", "source": f"file://{model}"},
            "engine": {
                "recipe": "vllm",
                "args": ["--served-model-name", "tiny-chat", "--dtype", "float32",
                         "--max-model-len", "256", "--disable-uvicorn-access-log"],
                "env": {
                    "HF_HUB_OFFLINE": "1",
                    "TRANSFORMERS_OFFLINE": "1",
                    "VLLM_CPU_KVCACHE_SPACE": "1",
                    "VLLM_NO_USAGE_STATS": "1",
                    "DO_NOT_TRACK": "1",
                    "VIRTUAL_ENV": str(VLLM_VENV),
                    "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
                },
                "startupTimeoutSeconds": 600,
            },
            "cluster": "vllm-plane",
            "pool": "vllm-plane-cpu",
            "nodes": [0],
        },
    }  # fmt: skip


def _status(api: api_client.Client) -> dict[str, Any]:
    found: dict[str, Any] = api.get("Replica", "chat-0").get("status") or {}
    return found
