"""One control plane over HTTP, as one identity (bearer token).

Every call of the client goes through here, so a transport failure becomes ConnectionFailed
and an error answer becomes its ApiError in one place.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from typing import Any

import httpx

import inferplane
from inferplane import tls
from inferplane.client import errors, reachability
from inferplane.client.objects import Object


class Connection:
    """A pooled HTTP client of one server, answering parsed bodies or raising client errors."""

    def __init__(
        self,
        server: str,
        token: str | None,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None,
        tls: tls.ClientTLS | None,
    ) -> None:
        self.server = server.rstrip("/")
        self.timeout = timeout
        headers = {"User-Agent": f"inferplane/{inferplane.__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify: ssl.SSLContext | bool = tls.context() if tls is not None else True
        self._http = httpx.Client(
            base_url=self.server,
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=verify,
        )

    def close(self) -> None:
        self._http.close()

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer to one request, when it is not an error."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise reachability.unreachable(self.server, exc) from exc
        if response.is_error:
            raise errors.error_from_response(response)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Object:
        """The JSON object one request answers; anything else is a BadResponse."""
        response = self.send(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            message = f"the server answered {method} {path} with something other than an object"
            raise errors.ApiError(response.status_code, "BadResponse", message, [])
        return body

    @contextlib.contextmanager
    def stream(self, path: str, params: dict[str, str]) -> Iterator[httpx.Response]:
        """A GET whose answer is read as it comes (a watch, a log), once it is not an error.

        No read timeout of our own: the server paces the stream and may stay quiet for long.
        A transport failure, opening or while the caller reads, raises ConnectionFailed."""
        timeout = httpx.Timeout(self.timeout, read=None)
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.is_error:
                    response.read()
                    raise errors.error_from_response(response)
                yield response
        except httpx.TransportError as exc:
            raise reachability.unreachable(self.server, exc) from exc
