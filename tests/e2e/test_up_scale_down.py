"""A scale-down under load loses nothing (issue 13, item 6), on `inferplane up` with real
reference engines: while streamed chat completions run through the gateway, the demo
deployment goes from 3 replicas to 1; every stream ends with its finish reason and its
tokens, no request fails, and the replicas removed drained before they stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import up_process
from tests.support.engine_process import wait_for
from tests.support.traffic import Traffic
from tests.support.up_process import UpProcess

pytestmark = pytest.mark.integration
STREAMS = 4


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
        traffic = Traffic(endpoint, up.api_key(), clients=STREAMS).start()
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
            traffic.stop()
        assert not traffic.errors, traffic.errors[:5]
        cut = traffic.cut()
        assert not cut, f"{len(cut)} of {len(traffic.done)} streams cut short: {cut[:5]}"
        assert up.interrupt() == 0, up.output()
    finally:
        up.kill_all(pids)
