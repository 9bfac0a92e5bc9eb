"""Why the control plane could not be reached: a transport error told apart by its cause.

A TLS verification failure on either side is told apart from a server that is down, since the
fix differs (a CA bundle, a client certificate, or starting the server).
"""

from __future__ import annotations

import ssl
from typing import TypeVar

import httpx

from inferplane.client import errors

_REFUSED_REASONS = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
    }
)
"""Alerts a server sends when it does not accept the client's certificate (or its absence)."""

_REFUSAL_HINT = (
    "a server that verifies client certificates closes the connection so when it does not "
    "accept this client's certificate, or its absence: check --client-cert/--client-key and "
    "that the server's --client-ca signed the certificate"
)


def unreachable(server: str, exc: httpx.TransportError) -> errors.ConnectionFailed:
    """The ConnectionFailed for a transport error: a TLS verification failure on either side
    is told apart from a server that is down, since the fix differs."""
    cause = _ssl_error(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        why = cause.verify_message or cause.reason or str(cause)
        return errors.UntrustedServer(server, f"its TLS certificate is not trusted here: {why}")
    if cause is not None and cause.reason in _REFUSED_REASONS:
        return errors.CertificateRefused(
            server, f"it refused this client's TLS certificate (or its absence): {cause.reason}"
        )
    detail = str(exc) or type(exc).__name__
    if server.startswith("https:") and _closed_unanswered(exc, cause):
        return errors.ConnectionFailed(server, f"{detail} ({_REFUSAL_HINT})")
    return errors.ConnectionFailed(server, detail)


def _closed_unanswered(exc: httpx.TransportError, cause: ssl.SSLError | None) -> bool:
    """Closed by the server during or right after the TLS handshake, before any answer.

    asyncio's and uvloop's TLS servers (ours, uvicorn) drop the alert that says why they
    refuse a client certificate: the client sees only a closed connection, at the handshake
    under TLS 1.2, at its first read under TLS 1.3."""
    if isinstance(cause, ssl.SSLEOFError):
        return True
    if isinstance(exc, httpx.RemoteProtocolError):
        return "without sending a response" in str(exc)
    return isinstance(exc, httpx.ReadError) and _cause(exc, ConnectionResetError) is not None


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The ssl.SSLError behind an httpx error, through httpcore's chained exceptions."""
    return _cause(exc, ssl.SSLError)


_Exc = TypeVar("_Exc", bound=BaseException)


def _cause(exc: BaseException, kind: type[_Exc]) -> _Exc | None:
    """The first exception of `kind` in the chain behind `exc` (itself included)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None or isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
