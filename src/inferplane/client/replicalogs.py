"""Replica logs through the control plane (docs/agent.md): a reader streams a replica's log,
and the agent of its cluster learns of open sessions and pushes the log's chunks to them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from urllib.parse import quote

import httpx

from inferplane.client import addressing
from inferplane.client.connection import Connection
from inferplane.client.objects import Objects


def stream(
    conn: Connection, namespace: str, name: str, *, follow: bool, tail_lines: int | None
) -> Iterator[bytes]:
    """A replica's log as its agent sends it, chunk by chunk; with `follow`, until the caller
    stops iterating or the stream is cut."""
    params = {"follow": "true"} if follow else {}
    if tail_lines is not None:
        params["tailLines"] = str(tail_lines)
    with conn.stream(_path(namespace, name), params) as response:
        yield from response.iter_bytes()


def requests(conn: Connection, cluster: str, *, known: Sequence[str], wait: int) -> Objects:
    """The cluster's open log sessions, once they differ from `known` (or after `wait` s)."""
    path = f"{addressing.API_PREFIX}/agents/{quote(cluster, safe='')}/log-requests"
    params = {"known": ",".join(known), "timeoutSeconds": str(wait)}
    timeout = httpx.Timeout(conn.timeout, read=wait + conn.timeout)
    body = conn.request("GET", path, params=params, timeout=timeout)
    return list(body.get("requests") or [])


def push(
    conn: Connection, namespace: str, name: str, *, session: str, data: bytes, eof: bool
) -> None:
    """Send a chunk of a replica's log to the reader of `session`; NotFound once it has gone."""
    params = {"session": session, **({"eof": "true"} if eof else {})}
    headers = {"Content-Type": "application/octet-stream"}
    conn.send("POST", _path(namespace, name), params=params, content=data, headers=headers)


def _path(namespace: str, name: str) -> str:
    ns, replica = quote(namespace, safe=""), quote(name, safe="")
    return f"{addressing.API_PREFIX}/namespaces/{ns}/replicas/{replica}/log"
