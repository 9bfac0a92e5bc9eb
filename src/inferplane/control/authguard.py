"""Failed authentications limited per source address, in the control plane.

`principal_of` asks the guard before it looks at a token: an address that sent too many
refused tokens lately gets 429 with Retry-After (Kubernetes' TooManyRequests Status) until
its bucket refills (policy/authfailures.py). Only a request that sent an Authorization header
and was refused counts; a request without one, or one that authenticates, takes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from inferplane.control import errors
from inferplane.policy import authfailures


@dataclass
class TooManyFailures(errors.ApiProblem):
    retry_after: int = 1
    """Whole seconds, as Retry-After and details.retryAfterSeconds say them."""

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["details"]["retryAfterSeconds"] = self.retry_after
        return body

    def response(self) -> JSONResponse:
        response = super().response()
        response.headers["Retry-After"] = str(self.retry_after)
        return response


@dataclass
class Guard:
    failures: authfailures.AuthFailures = field(default_factory=authfailures.AuthFailures)
    clock: Callable[[], float] = time.monotonic

    def check(self, request: Request) -> None:
        """Raise 429 if the request's address must wait before trying a token again."""
        source = source_of(request)
        if source not in self.failures.tracked:
            return
        seconds = self.failures.retry_after(source, self.clock())
        if seconds is not None:
            message = (
                f"too many failed authentications from {source}: retry after {seconds} s "
                f"(at most {self.failures.limit} refused tokens a minute per address)"
            )
            raise TooManyFailures(429, "TooManyRequests", message, retry_after=seconds)

    def failed(self, request: Request) -> None:
        """The request's token was refused: count it if it sent one."""
        if request.headers.get("authorization"):
            self.failures.failed(source_of(request), self.clock())


def source_of(request: Request) -> str:
    return request.client.host if request.client else ""


def of(request: Request) -> Guard:
    guard: Guard = request.app.state.auth_guard
    return guard
