"""Sending a request to one endpoint: its request head, and the model name it serves.

An engine started by an agent serves its model under the name its recipe gave it (vLLM and
the reference engine use the model path), which the gateway learns once per endpoint from the
engine's `/v1/models` and caches; an Endpoint's `upstreamModel` overrides it, and an external
upstream gets the client's name unless its Endpoint says otherwise.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Coroutine
from typing import Any

import orjson

from inferplane import logs
from inferplane.gateway.table import EndpointEntry
from inferplane.gateway.wire.upstream import Exchange, Origin, Pool, UpstreamError

log = logging.getLogger("inferplane.gateway.upstreams")

NAME_TIMEOUT = 5.0
NAME_RETRY_SECONDS = 30.0
"""After an engine failed to say its model's name, how long requests pass the client's name
unchanged before it is asked again: not once per request (that doubled the upstream's traffic
and logged a warning per request)."""


class Unknown(enum.Enum):
    UNKNOWN = "unknown"


UNKNOWN = Unknown.UNKNOWN
"""An endpoint's served name not learned yet (asking takes a request)."""


class Upstreams:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._names: dict[tuple[str, str, Origin], str] = {}
        self._unknown: dict[tuple[str, str, Origin], float] = {}

    def send(
        self,
        endpoint: EndpointEntry,
        path: bytes,
        body: bytes,
        *,
        connect_timeout: float,
        first_byte_timeout: float,
        request_id: bytes,
        method: bytes = b"POST",
    ) -> Coroutine[Any, Any, Exchange]:
        """The pool's request, to await (no coroutine frame of its own on the hot path)."""
        origin = endpoint.origin
        head = [
            method,
            b" ",
            origin.base_path,
            path,
            b" HTTP/1.1\r\nhost: ",
            origin.host_header,
            b"\r\ncontent-type: application/json\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nx-request-id: ",
            request_id,
            b"\r\n",
        ]
        if endpoint.auth is not None:
            head += [b"authorization: ", endpoint.auth, b"\r\n"]
        head.append(b"\r\n")
        return self.pool.request(
            origin,
            b"".join(head),
            body,
            connect_timeout=connect_timeout,
            first_byte_timeout=first_byte_timeout,
        )

    def known_name(self, endpoint: EndpointEntry) -> str | Unknown | None:
        """`served_name` when it can be answered without asking the engine, else UNKNOWN
        (the usual request needs no coroutine for a cached name)."""
        if endpoint.upstream_model is not None:
            return endpoint.upstream_model
        if endpoint.external:
            return None
        key = (endpoint.namespace, endpoint.name, endpoint.origin)
        name = self._names.get(key)
        if name is not None:
            return name
        if self._unknown.get(key, 0.0) > time.monotonic():
            return None
        return UNKNOWN

    async def served_name(self, endpoint: EndpointEntry) -> str | None:
        """The model name to send this endpoint; None to pass the client's unchanged."""
        known = self.known_name(endpoint)
        if known is not UNKNOWN:
            return known
        key = (endpoint.namespace, endpoint.name, endpoint.origin)
        name = await self._ask(endpoint)
        if name is None:
            self._unknown[key] = time.monotonic() + NAME_RETRY_SECONDS
        else:
            self._names[key] = name
            self._unknown.pop(key, None)
        return name

    async def _ask(self, endpoint: EndpointEntry) -> str | None:
        try:
            exchange = await self.send(
                endpoint,
                b"/v1/models",
                b"",
                connect_timeout=NAME_TIMEOUT,
                first_byte_timeout=NAME_TIMEOUT,
                request_id=b"model-name",
                method=b"GET",
            )
            body = await exchange.read(NAME_TIMEOUT)
            return str(orjson.loads(body)["data"][0]["id"])
        except (UpstreamError, ValueError, KeyError, IndexError, TypeError) as error:
            logs.event(
                log,
                "model name unknown",
                level=logging.WARNING,
                endpoint=f"{endpoint.namespace}/{endpoint.name}",
                error=str(error),
            )
            return None

    def forget(self, live: set[tuple[str, str]]) -> None:
        """Drop cached names of endpoints that are gone."""
        for key in [k for k in self._names if (k[0], k[1]) not in live]:
            del self._names[key]
        for key in [k for k in self._unknown if (k[0], k[1]) not in live]:
            del self._unknown[key]
