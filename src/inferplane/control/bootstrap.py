"""First start: make the fleet admin's token, write it 0600 in the data dir, store its hash."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from inferplane import logs
from inferplane.api import meta
from inferplane.control import auth
from inferplane.store import base as store_base

log = logging.getLogger(__name__)


def ensure_admin_token(store: store_base.Store, path: Path) -> str:
    """Return the admin token, creating the file and its ApiKey when either is missing."""
    if path.exists():
        token = path.read_text().strip()
    else:
        token = auth.new_token()
        _write_private(path, token)
        logs.event(log, "admin token created", path=str(path))
    token_hash = auth.hash_token(token)
    name = f"admin-{token_hash[:8]}"
    try:
        store.get("ApiKey", auth.SYSTEM_NAMESPACE, name)
    except store_base.NotFoundError:
        store.create(_admin_key(name, token, token_hash))
        logs.event(log, "admin key stored", object=f"{auth.SYSTEM_NAMESPACE}/{name}")
    return token


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


def _admin_key(name: str, token: str, token_hash: str) -> dict[str, object]:
    return {
        "apiVersion": meta.API_VERSION,
        "kind": "ApiKey",
        "metadata": {"name": name, "namespace": auth.SYSTEM_NAMESPACE},
        "spec": {
            "role": "admin",
            "description": "fleet admin, created at the control plane's first start",
            "tokenHash": token_hash,
            "tokenPrefix": token[:12],
        },
    }
