"""Performance claim: `inferplane control` is ready to serve in under 2 seconds.

Starts the control plane R times in fresh data directories (so each start creates its store
and admin token, the slowest case) and measures the wall time from spawning the process to
the first 200 from `/readyz`. Baseline, in the same run and the same way: a bare FastAPI
app with one `/readyz` route under uvicorn — the floor any Python control plane built on
FastAPI pays for the interpreter, imports and server start. Prints median and max of each
and the ratio of medians.

    .venv/bin/python bench/control_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.control import free_port

BARE_APP = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/readyz")
def readyz() -> str:
    return "ok"
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def time_to_ready(command: list[str], port: int, *, timeout: float = 30.0) -> float:
    """Seconds from spawn to the first 200 from /readyz; the process is stopped after."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - started < timeout:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=0.5).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                time.sleep(0.01)
        raise RuntimeError(f"not ready within {timeout}s: {command}")
    finally:
        process.terminate()
        process.wait(timeout=10)


def ours() -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        command = [sys.executable, "-m", "inferplane", "control", "--port", str(port)]
        return time_to_ready([*command, "--data-dir", data_dir, "--log-level", "warning"], port)


def baseline() -> float:
    port = free_port()
    return time_to_ready([sys.executable, "-c", BARE_APP, str(port)], port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="starts of each (default 7)")
    runs = parser.parse_args().runs
    results = {"bare FastAPI + uvicorn": [], "inferplane control": []}
    for _ in range(runs):  # interleaved, so drift on a shared machine hits both alike
        results["bare FastAPI + uvicorn"].append(baseline())
        results["inferplane control"].append(ours())
    print(f"command: {' '.join(sys.argv)}   runs: {runs}")
    print(f"{'process':<24} {'median s':>9} {'max s':>7}")
    for name, times in results.items():
        print(f"{name:<24} {statistics.median(times):>9.2f} {max(times):>7.2f}")
    ratio = statistics.median(results["inferplane control"]) / statistics.median(
        results["bare FastAPI + uvicorn"]
    )
    print(f"ratio (ours / baseline, medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
