"""What every command needs from outside itself: how to reach the control plane.

The root callback stores a Session in ``ctx.obj``; tests invoke the app with their own Session
(``obj=Session(transport=fake)``) so commands talk to a fake server with no other seam.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import typer

from inferplane import client as api_client
from inferplane import tls


@dataclass(frozen=True)
class Session:
    context: str | None = None
    """The --context given, else None for the config's current context."""
    transport: httpx.BaseTransport | None = None
    """Replaces the network in tests; None means real HTTP."""

    def client(self) -> api_client.Client:
        """A client for the chosen context, with the environment's overrides applied."""
        return api_client.Client.from_config(self.context, transport=self.transport)

    def client_for(
        self, server: str, token: str | None, namespace: str, *, tls: tls.ClientTLS | None = None
    ) -> api_client.Client:
        """A client for an explicit server, as login needs before any context exists."""
        return api_client.Client(
            server, token, namespace=namespace, transport=self.transport, tls=tls
        )


def of(ctx: typer.Context) -> Session:
    session = ctx.find_object(Session)
    return session if session is not None else Session()
