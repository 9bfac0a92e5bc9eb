"""A scale-down under load loses nothing (issue 13, item 6), on `inferplane up` with real
reference engines: while streamed chat completions run through the gateway, the demo
deployment goes from 3 replicas to 1; every stream ends with its finish reason and its
tokens, no request fails, and the replicas removed drained before they stopped."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest

from tests.support import up_process
from tests.support.engine_process import wait_for
from tests.support.up_process import UpProcess

pytestmark = pytest.mark.integration
STREAMS = 4
MAX_TOKENS = 48


@dataclass
class Traffic:
    """STREAMS clients streaming chat completions back to back until stopped."""

    endpoint: str
    key: str
    done: list[tuple[str | None, int]] = field(default_factory=list)
    """(finish reason, content chunks) of each finished stream: a stream cut short ends
    without the finish reason "length"."""
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def client_loop(self) -> None:
        with openai.OpenAI(
            base_url=f"{self.endpoint}/v1", api_key=self.key, max_retries=0, timeout=60
        ) as chat:
            while not self.stop.is_set():
                try:
                    self.done.append(self._one(chat))
                except openai.OpenAIError as exc:
                    self.errors.append(repr(exc))

    def _one(self, chat: openai.OpenAI) -> tuple[str | None, int]:
        stream = chat.chat.completions.create(
            model="demo",
            messages=[{"role": "user", "content": "Tell me about Python modules."}],
            max_tokens=MAX_TOKENS,
            stream=True,
            extra_body={"ignore_eos": True},
        )
        finish, chunks = None, 0
        for chunk in stream:
            for choice in chunk.choices:
                chunks += bool(choice.delta.content)
                finish = choice.finish_reason or finish
        return finish, chunks


@pytest.mark.timeout(300)
def test_scaling_down_under_streaming_load_fails_no_request_and_cuts_no_stream(
    tmp_path: Path,
) -> None:
    up = UpProcess(tmp_path, args=["--replicas", "3"])
    up.start()
    pids: set[int] = set()
    try:
        endpoint = up.endpoint()
        pids = up.descendants()
        traffic = Traffic(endpoint, up.api_key())
        threads = [threading.Thread(target=traffic.client_loop) for _ in range(STREAMS)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: len(traffic.done) >= 2 * STREAMS, timeout=60, what="traffic")
            with up.client() as client:
                assert len(up_process.ready_replicas(client)) == 3
                # Autoscaling off, one replica: the deployment controller removes two now.
                patch = {"spec": {"autoscaling": {"enabled": False}, "replicas": 1}}
                client.patch("Deployment", "demo", patch, namespace="default")
                wait_for(
                    lambda: len(up_process.replicas(client)) == 1,
                    timeout=90,
                    what="two replicas drained and gone",
                )
            before = len(traffic.done)
            wait_for(
                lambda: len(traffic.done) >= before + 2 * STREAMS,
                timeout=60,
                what="traffic on the one replica left",
            )
        finally:
            traffic.stop.set()
            for thread in threads:
                thread.join(timeout=90)
        assert not traffic.errors, traffic.errors[:5]
        cut = [d for d in traffic.done if d[0] != "length" or d[1] == 0]
        assert not cut, f"{len(cut)} of {len(traffic.done)} streams cut short: {cut[:5]}"
        assert up.interrupt() == 0, up.output()
    finally:
        up.kill_all(pids)
