"""The agent's own credential: obtained once with a join token, then kept in its data dir.

The file holds the agent key's token (mode 0600, written atomically) and the cluster it speaks
for, so an agent restarted on the same data dir reuses it and a data dir cannot be pointed at
another cluster by mistake. A revoked key is not renewed behind the operator's back: the agent
then fails to authenticate until it is given a new join token (and the old file removed).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from inferplane import client as api_client
from inferplane import logs, tls

log = logging.getLogger(__name__)

FILE = "credential.json"


class CredentialError(RuntimeError):
    """No usable credential: the message says what to do."""


def path_in(data_dir: Path) -> Path:
    return data_dir / FILE


def kept(data_dir: Path, cluster: str) -> str | None:
    """The token kept in `data_dir`, if any; CredentialError if it is another cluster's."""
    path = path_in(data_dir)
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        token, owner = str(saved["token"]), str(saved["cluster"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CredentialError(f"{path}: unreadable agent credential ({exc}); remove it") from exc
    if owner != cluster:
        raise CredentialError(f"{path} is the credential of cluster {owner!r}, not {cluster!r}")
    return token


def obtain(
    control: str,
    cluster: str,
    join_token: str | None,
    data_dir: Path,
    client_tls: tls.ClientTLS | None = None,
) -> str:
    """The agent's token: the kept one, else one obtained with `join_token` and kept."""
    token = kept(data_dir, cluster)
    if token is not None:
        return token
    if not join_token:
        raise CredentialError(
            f"no agent credential in {data_dir} and no join token: give --join-token "
            "(inferplane apikey create --role join, docs/security.md)"
        )
    try:
        with api_client.Client(control, join_token, timeout=10.0, tls=client_tls) as client:
            answer = client.join(cluster)
    except api_client.ClientError as exc:
        raise CredentialError(f"joining as cluster {cluster!r} failed: {exc}") from exc
    token = str(answer["token"])
    _save(path_in(data_dir), {"cluster": cluster, "apiKey": answer.get("apiKey"), "token": token})
    logs.event(log, "joined", cluster=cluster, apikey=answer.get("apiKey"))
    return token


def _save(path: Path, content: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(content, out)
    os.replace(partial, path)
