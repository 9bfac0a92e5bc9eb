"""The engine tokens of this agent's replicas: revealed once, then kept in memory only.

The control plane makes a token for every Replica (a Secret `engine-<uid>` in
inferplane-system) and then sets the replica's `status.engineTokenSecret`; until then the
agent does not start the engine. It reveals the token with its own credential (the control
plane hands it only the tokens of replicas bound to its cluster) and keeps it here, never in
its state file or a log line, so an engine that crashes is restarted with it even while the
control plane is away. A failed reveal is tried again after a short backoff, never in a loop
that would stall the agent's main thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from inferplane import client as api_client
from inferplane.api import secrets as api_secrets
from inferplane.backoff import Backoff

Object = dict[str, Any]
RETRY = Backoff(base=1.0, cap=15.0)


class TokenUnavailable(Exception):
    """No token to start the engine with yet; the message says why. Try again later."""


def issued_secret(obj: Object) -> str | None:
    """The replica's engine-token Secret, once the control plane has made it: the name in its
    status, which must be the one its uid gives (anything else is not its token)."""
    uid = obj["metadata"].get("uid")
    named = (obj.get("status") or {}).get("engineTokenSecret")
    if not uid or named != api_secrets.engine_token_name(uid):
        return None
    return str(named)


class EngineTokens:
    """Tokens by Secret name; used from the agent's main thread only."""

    def __init__(
        self,
        make_client: Callable[[], api_client.Client],
        *,
        ticks: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make_client = make_client
        self._ticks = ticks
        self._client: api_client.Client | None = None
        self._tokens: dict[str, str] = {}
        self._failures: dict[str, tuple[int, float]] = {}
        """Secret name → (failed reveals in a row, when the next may be tried)."""

    def token_for(self, obj: Object) -> str:
        """The replica's token; TokenUnavailable while it is not issued or cannot be read."""
        name = issued_secret(obj)
        if name is None:
            raise TokenUnavailable("waiting for the control plane to issue its engine token")
        held = self._tokens.get(name)
        if held is not None:
            return held
        failures, next_try = self._failures.get(name, (0, 0.0))
        if self._ticks() < next_try:
            raise TokenUnavailable("its engine token could not be read yet; retrying")
        try:
            token = self._reveal(name)
        except (api_client.ClientError, KeyError, TypeError) as exc:
            self._failures[name] = (failures + 1, self._ticks() + RETRY.delay(failures + 1))
            raise TokenUnavailable(f"its engine token could not be read: {exc}") from exc
        self._failures.pop(name, None)
        self._tokens[name] = token
        return token

    def held(self, obj: Object) -> str | None:
        """The replica's token if it is already held (no call to the control plane)."""
        name = issued_secret(obj)
        return self._tokens.get(name) if name is not None else None

    def keep_only(self, objects: list[Object]) -> None:
        """Forget the tokens of replicas no longer bound here."""
        wanted = {issued_secret(obj) for obj in objects}
        for name in [n for n in self._tokens if n not in wanted]:
            del self._tokens[name]
        for name in [n for n in self._failures if n not in wanted]:
            del self._failures[name]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _reveal(self, name: str) -> str:
        if self._client is None:
            self._client = self._make_client()
        try:
            body = self._client.reveal(name, namespace=api_secrets.ENGINE_TOKEN_NAMESPACE)
        except api_client.ConnectionFailed:
            self.close()  # a fresh connection next time
            raise
        token = body["data"][api_secrets.ENGINE_TOKEN_KEY]
        if not isinstance(token, str) or not token:
            raise TypeError("the engine token is not a string")
        return token
