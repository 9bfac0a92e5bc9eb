"""The per-replica API token: with one set, every route but the probes needs
`Authorization: Bearer TOKEN`, as vLLM's `--api-key` does.

Open without the token: `/health`, `/metrics` (the agent probes and scrapes them; vLLM and
SGLang keep both open too), and V2's health probes (`/v2/health/live`, `/v2/health/ready`,
`/v2/models/{name}[/versions/{v}]/ready`). Everything else, unknown paths included, answers
401 without it: vLLM guards only `/v1/*` and leaves `/tokenize` and the rest open; here the
list of what is open is short and closed by default, so a route added later is guarded.

The token is compared as a SHA-256 digest with `hmac.compare_digest`, so neither its bytes
nor its length can be learnt from timings; it is never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from inferplane.engine.server import errors

OPEN_PATHS = frozenset({"/health", "/metrics", "/v2/health/live", "/v2/health/ready"})
"""Paths that answer without the token: the probes and the scrape."""

_MODEL_READY = re.compile(r"/v2/models/[^/]+(/versions/[^/]+)?/ready")
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


class TokenError(ValueError):
    """A token that no client could send in an Authorization header."""


def check_token(token: str) -> str:
    """`token` if usable as a bearer token (visible ASCII, no spaces); TokenError if not."""
    if not _TOKEN_CHARS.fullmatch(token):
        raise TokenError("must be non-empty printable ASCII without spaces")
    return token


def is_open(path: str) -> bool:
    """Whether `path` answers without the token."""
    return path in OPEN_PATHS or _MODEL_READY.fullmatch(path) is not None


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class TokenCheck:
    """ASGI middleware: 401, in the route's protocol shape, for a request without the
    token on a guarded path."""

    def __init__(self, app: ASGIApp, *, token: str) -> None:
        self.app = app
        self._expected = _digest(check_token(token).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope["path"]) or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        challenge = {"WWW-Authenticate": "Bearer"}
        response = errors.shaped(Request(scope), _unauthorized(), challenge)
        await response(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        # A missing token is compared as an empty one (never the token, which is not
        # empty), so a missing and a wrong one take the same path.
        return hmac.compare_digest(_digest(_bearer(scope) or b""), self._expected)


def _bearer(scope: Scope) -> bytes | None:
    """The credentials of `Authorization: Bearer ...` (the scheme in any case)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            return credentials.strip() if scheme.lower() == b"bearer" else None
    return None


def _unauthorized() -> errors.APIError:
    return errors.APIError(
        "missing or wrong API key: send the replica's token as Authorization: Bearer <token>",
        status=401,
        code="invalid_api_key",
    )
