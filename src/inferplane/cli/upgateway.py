"""The gateway in `inferplane up`: its child process, the demo's API key, and the check that
a request through it reaches a replica."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import httpx

from inferplane.cli.upview import DEMO, KEY_NAME, NAMESPACE

KEY_FILE = "demo-api-key"
"""In DATA_DIR: the demo key's token (0600), so a second `up` prints the same key."""


def gateway_child(port: int, control: str, token: str, data_dir: Path, log_level: str) -> Any:
    from inferplane.supervisor import Child, http_ready

    logs = data_dir / "logs"
    args = [
        "gateway",
        "--port",
        str(port),
        "--control",
        control,
        "--state-dir",
        str(data_dir / "gateway"),
        "--access-log",
        str(logs / "gateway-access.log"),
        "--log-level",
        log_level,
    ]
    return Child(
        "gateway",
        args,
        http_ready(f"http://127.0.0.1:{port}/readyz"),
        env={"INFERPLANE_TOKEN": token},
        log_path=logs / "gateway.log",
        stop_grace=15.0,
    )


def demo_key(client: Any, data_dir: Path) -> str:
    """The demo key's token: the one kept in DATA_DIR if its ApiKey still matches it, else a
    new key (replacing a stale ApiKey of that name)."""
    from inferplane import client as api_client

    path = data_dir / KEY_FILE
    kept = path.read_text().strip() if path.exists() else ""
    try:
        existing = client.get("ApiKey", KEY_NAME, namespace=NAMESPACE)
    except api_client.NotFound:
        existing = None
    digest = hashlib.sha256(kept.encode()).hexdigest()
    if existing is not None and kept and existing["spec"].get("tokenHash") == digest:
        return kept
    if existing is not None:
        client.delete("ApiKey", KEY_NAME, namespace=NAMESPACE)
    created = client.create(
        {
            "kind": "ApiKey",
            "metadata": {"name": KEY_NAME, "namespace": NAMESPACE},
            "spec": {"role": "viewer", "description": "clients of the demo, made by inferplane up"},
        }
    )
    token: str = created["status"]["token"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token


def wait_answering(gateway: str, key: str, timeout: float) -> bool:
    """Until a completion through the gateway succeeds (it learns the replicas by watch)."""
    deadline = time.monotonic() + timeout
    body = {"model": DEMO, "prompt": "hello", "max_tokens": 1}
    headers = {"Authorization": f"Bearer {key}"}
    while time.monotonic() < deadline:
        try:
            response = httpx.post(
                f"{gateway}/v1/completions", json=body, headers=headers, timeout=10.0
            )
            if response.status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return False
