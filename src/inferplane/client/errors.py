"""Every error the client raises, one tree under ``ClientError``.

``ApiError`` (and a subclass per Status reason) when the server answered with an error,
``ConnectionFailed`` (and its TLS cases) when it could not be reached, ``BadObject`` when an
object handed to the client cannot be addressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class ClientError(Exception):
    """Root of every error the client raises."""


class ConnectionFailed(ClientError):
    """The server could not be reached (refused, DNS, TLS, timeout, stream cut)."""

    def __init__(self, server: str, detail: str) -> None:
        super().__init__(f"cannot reach the control plane at {server}: {detail}")
        self.server = server
        self.detail = detail


class UntrustedServer(ConnectionFailed):
    """TLS: the server's certificate did not verify against the CA bundle (or the system's
    CAs when there is none), or was not issued for the address dialled."""


class CertificateRefused(ConnectionFailed):
    """TLS: the server refused this client's certificate, or wanted one and got none."""


class BadObject(ClientError):
    """An object handed to the client lacks what is needed to address it (kind, name)."""


@dataclass(frozen=True)
class Cause:
    """One reason a request was refused, usually one bad field of the object."""

    field: str
    message: str


class ApiError(ClientError):
    """The server answered with a Status error body."""

    def __init__(self, status: int, reason: str, message: str, causes: list[Cause]) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes


class BadRequest(ApiError):
    """400: malformed body, bad selector, name in the body differing from the path."""


class Unauthorized(ApiError):
    """401: no token, or one the server does not know."""


class Forbidden(ApiError):
    """403: the token's role does not allow this verb here."""


class NotFound(ApiError):
    """404: no such object (or no such path)."""


class AlreadyExists(ApiError):
    """409 AlreadyExists: create of a name that is taken."""


class Conflict(ApiError):
    """409 Conflict: the resourceVersion sent is stale; re-read and retry."""


class Gone(ApiError):
    """410: a watch asked for a compacted resourceVersion; list again and watch from there."""


class Invalid(ApiError):
    """422: schema or admission refused the object; ``causes`` names each bad field."""


_BY_REASON: dict[str, type[ApiError]] = {
    "AlreadyExists": AlreadyExists,
    "Conflict": Conflict,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
}


def error_from_status(status: int, body: Any) -> ApiError:
    """Build the right ApiError subclass from a Status body (or whatever came instead)."""
    if not isinstance(body, dict) or body.get("kind") != "Status":
        text = str(body)[:500] if body else "no details"
        return _BY_STATUS.get(status, ApiError)(status, "Unknown", f"HTTP {status}: {text}", [])
    reason = str(body.get("reason") or "Unknown")
    details = body.get("details") or {}
    causes = [
        Cause(field=str(c.get("field") or ""), message=str(c.get("message") or ""))
        for c in details.get("causes") or []
        if isinstance(c, dict)
    ]
    error_type = _BY_REASON.get(reason) or _BY_STATUS.get(status, ApiError)
    return error_type(status, reason, str(body.get("message") or reason), causes)


def error_from_response(response: httpx.Response) -> ApiError:
    """The ApiError for an error answer, its body read as a Status when it is JSON."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return error_from_status(response.status_code, body)
