"""The gateway in `inferplane up`: its child process, the demo's API key, and the check that
a request through it reaches a replica."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from inferplane.cli.upview import DEMO, KEY_NAME, NAMESPACE

KEY_FILE = "demo-api-key"
"""In DATA_DIR: the demo key's token (0600), so a second `up` prints the same key."""
GATEWAY_KEY_FILE = "gateway-token"
"""In DATA_DIR: the gateway's own key (role gateway, 0600): never the admin token."""
GATEWAY_KEY_NAME = "gateway-local"
SYSTEM_NAMESPACE = "inferplane-system"
JOIN_SECONDS = 3600


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
    spec = {"role": "viewer", "description": "clients of the demo, made by inferplane up"}
    return _kept_key(client, data_dir / KEY_FILE, NAMESPACE, KEY_NAME, spec)


def gateway_key(client: Any, data_dir: Path) -> str:
    """The local gateway's identity: a key of role gateway, kept in DATA_DIR like the demo's."""
    spec = {"role": "gateway", "description": "the gateway of inferplane up"}
    return _kept_key(client, data_dir / GATEWAY_KEY_FILE, SYSTEM_NAMESPACE, GATEWAY_KEY_NAME, spec)


def join_key(client: Any, cluster: str, agent_dir: Path) -> str:
    """A fresh join key bound to `cluster`, valid for an hour, for its agent's first start.
    An agent credential the store no longer knows (its key deleted) is removed so the agent
    joins again."""
    from inferplane import client as api_client
    from inferplane.agent import credential

    try:
        client.get("ApiKey", f"agent-{cluster}", namespace=SYSTEM_NAMESPACE)
    except api_client.NotFound:
        credential.path_in(agent_dir).unlink(missing_ok=True)
    name = f"join-{cluster}"
    with contextlib.suppress(api_client.NotFound):
        client.delete("ApiKey", name, namespace=SYSTEM_NAMESPACE)
    expires = datetime.now(UTC) + timedelta(seconds=JOIN_SECONDS)
    spec = {
        "role": "join",
        "cluster": cluster,
        "expiresAt": expires.isoformat(timespec="seconds"),
        "description": f"first start of the agent of {cluster}, made by inferplane up",
    }
    created = client.create(_apikey(SYSTEM_NAMESPACE, name, spec))
    token: str = created["status"]["token"]
    return token


def _kept_key(client: Any, path: Path, namespace: str, name: str, spec: dict[str, Any]) -> str:
    from inferplane import client as api_client

    kept = path.read_text().strip() if path.exists() else ""
    try:
        existing = client.get("ApiKey", name, namespace=namespace)
    except api_client.NotFound:
        existing = None
    digest = hashlib.sha256(kept.encode()).hexdigest()
    if existing is not None and kept and existing["spec"].get("tokenHash") == digest:
        return kept
    if existing is not None:
        client.delete("ApiKey", name, namespace=namespace)
    created = client.create(_apikey(namespace, name, spec))
    token: str = created["status"]["token"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token


def _apikey(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "ApiKey", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


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
