"""The process runtime with a fake engine (tests/support/fake_engine.py) as its child.

Processes are real; time is not: the runtime's clock is a number the test moves, so backoff,
probe periods, startup timeouts and grace periods are stepped through, never waited for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from inferplane.agent.runtime import base, probes, process, processes
from inferplane.backoff import Backoff
from tests.support import fake_engine
from tests.support.engine_process import wait_for

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_launch(name: str = "ns/fake", *args: str, **fields: object) -> base.Launch:
    command = (sys.executable, str(fake_engine.PATH), "--port", "{port}")
    return base.Launch(name=name, command=command, args=args, **fields)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_runtime(tmp_path: Path, clock: Clock) -> Iterator[Callable[..., process.ProcessRuntime]]:
    made: list[process.ProcessRuntime] = []

    def make(probe: probes.Probe = probes.http_probe, **settings: object) -> process.ProcessRuntime:
        fields: dict[str, object] = {"backoff": Backoff(base=10.0, cap=40.0), **settings}
        config = process.ProcessSettings(tmp_path / "agent", **fields)  # type: ignore[arg-type]
        runtime = process.ProcessRuntime(config, clock=clock, probe=probe)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close(grace=2.0, stop_engines=True)


def settle(runtime: process.ProcessRuntime, clock: Clock, until: Callable[[], bool]) -> None:
    """Sync (moving the clock a little, so probes fall due) until `until()` holds."""

    def step() -> bool:
        clock.now += 0.5
        runtime.sync()
        return until()

    wait_for(step, timeout=30, what="the runtime to settle")


def status(runtime: process.ProcessRuntime, name: str = "ns/fake") -> base.EngineStatus:
    found = runtime.status(name)
    assert found is not None
    return found


def test_an_engine_turns_ready_with_its_port_env_and_log(
    make_runtime: Callable[..., process.ProcessRuntime], clock: Clock
) -> None:
    runtime = make_runtime()
    env = {"CUDA_VISIBLE_DEVICES": "2,3", "MODE": "x y"}
    launch = fake_launch(
        "ns/fake", "--print-env", "CUDA_VISIBLE_DEVICES", "MODE", "INFERPLANE_TOKEN", env=env
    )
    os.environ["INFERPLANE_TOKEN"] = "secret"
    try:
        runtime.start(launch)
    finally:
        del os.environ["INFERPLANE_TOKEN"]
    assert status(runtime).phase == "Starting"
    settle(runtime, clock, lambda: status(runtime).phase == "Ready")
    ready = status(runtime)
    assert ready.url is not None and ready.url.startswith("http://127.0.0.1:")
    assert ready.restarts == 0 and ready.pid is not None and ready.message == ""
    log = runtime.read_log("ns/fake", offset=0, limit=1 << 16).data.decode()
    assert "CUDA_VISIBLE_DEVICES=2,3" in log
    assert "MODE=x y" in log
    assert "INFERPLANE_TOKEN=<unset>" in log  # the agent's token never reaches an engine
    assert f"listening on {ready.url.rsplit(':', 1)[1]}" in log


def test_crashes_restart_with_backoff_into_crash_loop_back_off(
    make_runtime: Callable[..., process.ProcessRuntime], clock: Clock
) -> None:
    runtime = make_runtime()
    runtime.start(fake_launch("ns/fake", "--exit-code", "3"))
    for crash in range(1, 4):
        wait_for(lambda: (runtime.sync(), status(runtime).pid is None)[1], what="the exit")
        crashed = status(runtime)
        assert crashed.restarts == crash - 1
        assert "engine exited with code 3: boom 3" in crashed.message
        expected = "CrashLoopBackOff" if crash >= base.CRASH_LOOP_AFTER else "Starting"
        assert crashed.phase == expected
        # Backoff doubles: 10 s, 20 s, 40 s. Just before it ends nothing restarts.
        delay = min(10.0 * 2 ** (crash - 1), 40.0)
        clock.now += delay - 0.1
        runtime.sync()
        assert status(runtime).pid is None
        clock.now += 0.1
        runtime.sync()
        assert status(runtime).restarts == crash


def test_a_ready_engine_that_stops_answering_is_killed_and_restarted(
    make_runtime: Callable[..., process.ProcessRuntime], clock: Clock
) -> None:
    answers: list[probes.ProbeResult] = ["ok", "unreachable", "unreachable", "unreachable"]

    def scripted(url: str) -> probes.ProbeResult:
        return answers.pop(0) if answers else "ok"

    runtime = make_runtime(probe=scripted, failure_threshold=3, probe_period=2.0)
    runtime.start(fake_launch())
    settle(runtime, clock, lambda: status(runtime).phase == "Ready")
    first = status(runtime).pid
    clock.now += 2.0
    runtime.sync()
    clock.now += 2.0
    runtime.sync()
    assert status(runtime).phase == "Ready"  # two misses are tolerated
    clock.now += 2.0
    runtime.sync()  # the third kills it
    wait_for(lambda: (runtime.sync(), status(runtime).pid is None)[1], what="the kill")
    assert "failed 3 liveness probes of /health" in status(runtime).message
    clock.now += 10.0
    settle(runtime, clock, lambda: status(runtime).phase == "Ready")
    assert status(runtime).restarts == 1
    assert status(runtime).pid != first


def test_an_engine_that_never_turns_healthy_fails_its_startup_timeout(
    make_runtime: Callable[..., process.ProcessRuntime], clock: Clock
) -> None:
    runtime = make_runtime(probe=lambda url: "unhealthy")
    runtime.start(fake_launch(startup_timeout=30.0))
    clock.now += 29.0
    runtime.sync()
    assert status(runtime).phase == "Starting" and status(runtime).pid is not None
    clock.now += 1.0
    runtime.sync()
    wait_for(lambda: (runtime.sync(), status(runtime).pid is None)[1], what="the kill")
    assert status(runtime).message == "not healthy within its startup timeout of 30s"


def test_stop_drains_with_sigterm_and_kills_after_the_grace(
    make_runtime: Callable[..., process.ProcessRuntime], clock: Clock
) -> None:
    runtime = make_runtime()
    runtime.start(fake_launch("ns/polite"))
    runtime.start(fake_launch("ns/stubborn", "--ignore-term"))
    settle(
        runtime, clock, lambda: all(status(runtime, n).phase == "Ready" for n in runtime.names())
    )
    pids = {name: status(runtime, name).pid for name in runtime.names()}
    runtime.stop("ns/polite", grace=30.0)
    runtime.stop("ns/stubborn", grace=30.0)
    assert status(runtime, "ns/polite").phase == "Draining"
    wait_for(lambda: (runtime.sync(), runtime.status("ns/polite") is None)[1], what="the drain")
    assert "draining" in runtime.read_log("ns/polite", offset=0, limit=1 << 16).data.decode()
    runtime.sync()
    assert status(runtime, "ns/stubborn").phase == "Draining"  # ignores SIGTERM, within grace
    clock.now += 30.0
    wait_for(lambda: (runtime.sync(), runtime.status("ns/stubborn") is None)[1], what="SIGKILL")
    for pid in pids.values():
        assert pid is not None and not processes.is_running(pid, None)
    assert runtime.names() == []


def test_a_new_runtime_on_the_same_data_dir_adopts_running_engines(
    make_runtime: Callable[..., process.ProcessRuntime], clock: Clock
) -> None:
    first = make_runtime(die_with_agent=False)
    first.start(fake_launch())
    settle(first, clock, lambda: status(first).phase == "Ready")
    pid = status(first).pid
    first.close(grace=5.0, stop_engines=False)
    second = make_runtime()
    assert second.adopt() == ["ns/fake"]
    settle(second, clock, lambda: status(second).phase == "Ready")
    assert status(second).pid == pid
    assert status(second).restarts == 0
    second.stop("ns/fake", grace=5.0)
    wait_for(lambda: (second.sync(), second.status("ns/fake") is None)[1], what="the stop")
    assert pid is not None and not processes.is_running(pid, None)


def test_engines_die_with_an_agent_that_is_killed(tmp_path: Path) -> None:
    """No orphans: the kernel SIGTERMs an engine whose agent was SIGKILLed."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from inferplane.agent.runtime import base, process
        runtime = process.ProcessRuntime(process.ProcessSettings(Path({str(tmp_path)!r})))
        command = (sys.executable, {str(fake_engine.PATH)!r}, "--port", "{{port}}")
        runtime.start(base.Launch(name="ns/orphan", command=command))
        print(runtime.status("ns/orphan").pid, flush=True)
        time.sleep(60)
        """
    )
    command = [sys.executable, "-c", script]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as agent:
        assert agent.stdout is not None
        engine_pid = int(agent.stdout.readline())
        assert processes.is_running(engine_pid, None)
        agent.send_signal(signal.SIGKILL)
    wait_for(lambda: not processes.is_running(engine_pid, None), what="the orphan to die")


def test_read_log_pages_through_the_file(
    make_runtime: Callable[..., process.ProcessRuntime], clock: Clock
) -> None:
    runtime = make_runtime()
    with pytest.raises(base.UnknownEngine):
        runtime.read_log("ns/none", offset=0, limit=10)
    runtime.start(fake_launch())
    settle(runtime, clock, lambda: status(runtime).phase == "Ready")
    whole = runtime.read_log("ns/fake", offset=0, limit=1 << 16)
    first = runtime.read_log("ns/fake", offset=0, limit=5)
    rest = runtime.read_log("ns/fake", offset=first.offset, limit=1 << 16)
    assert first.data + rest.data == whole.data
    assert whole.size == len(whole.data) and rest.offset == whole.size
