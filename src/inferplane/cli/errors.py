"""Expected failures become one plain message on stderr and an exit code, never a traceback.

``error: <what went wrong>`` then, indented, one line per field the server blamed. Exit code 1
for every API, file and usage error; typer keeps 2 for flags it cannot parse.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from inferplane import client as api_client
from inferplane import clientconfig
from inferplane.api import errors as api_errors
from inferplane.api import registry

EXIT_FAILURE = 1


class UsageError(Exception):
    """Arguments that parse but cannot work together (e.g. a name with --all-namespaces)."""


EXPECTED: tuple[type[BaseException], ...] = (
    api_client.ClientError,
    api_errors.ApiError,
    clientconfig.ConfigError,
    registry.UnknownKindError,
    UsageError,
    OSError,
)
"""What the CLI reports plainly; anything else is a bug and keeps its traceback."""

FATAL: tuple[type[BaseException], ...] = (api_client.ConnectionFailed, api_client.Unauthorized)
"""Failures that would repeat for every object of a batch, so a batch stops at the first."""

HINTS: dict[type[Exception], str] = {
    api_client.Unauthorized: "log in with: inferplane login URL --token TOKEN",
    # Before ConnectionFailed, their base: the server runs, the fix is a file (first match wins).
    api_client.UntrustedServer: "trust its CA with: inferplane login URL --ca-bundle CA.crt "
    "(or $INFERPLANE_CA_BUNDLE); docs/security-tls.md",
    api_client.CertificateRefused: "present a certificate its --client-ca signed: inferplane "
    "login URL --client-cert C.crt --client-key C.key; docs/security-tls.md",
    api_client.ConnectionFailed: "is it running? start one on this machine with: inferplane up",
}


def describe(exc: BaseException) -> list[str]:
    """The message as lines: a headline, then one line per cause."""
    if isinstance(exc, api_client.ApiError):
        causes = [(c.field, c.message) for c in exc.causes]
        return _with_causes(exc.message, causes) + _hint(exc)
    if isinstance(exc, api_client.ConnectionFailed):
        return [str(exc), *_hint(exc)]
    if isinstance(exc, api_errors.DocumentError):
        return [f"{exc.source}[{exc.index}]: {exc.message}"]
    if isinstance(exc, api_errors.ValidationFailure):
        return _with_causes(str(exc), [(c.field, c.message) for c in exc.causes])
    if isinstance(exc, OSError) and exc.strerror:
        return [f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror]
    return [str(exc)]


def _with_causes(message: str, causes: list[tuple[str, str]]) -> list[str]:
    """One cause fits on the headline; several go below the server's summary, one a line."""
    lines = [f"{field}: {text}" if field else text for field, text in causes]
    if len(lines) == 1:
        return lines
    if not lines:
        return [message]
    # The summary repeats every cause after its first ': '; keep only what it says the object is.
    return [message.split(": ", 1)[0] + ":", *lines]


def _hint(exc: Exception) -> list[str]:
    hint = next((text for kind, text in HINTS.items() if isinstance(exc, kind)), None)
    return [hint] if hint else []


def report(exc: BaseException, *, where: str = "") -> None:
    """Print ``error: [where: ]message`` and the indented detail lines to stderr."""
    lines = describe(exc)
    prefix = f"{where}: " if where else ""
    typer.echo(f"error: {prefix}{lines[0]}", err=True)
    for line in lines[1:]:
        typer.echo(f"  {line}", err=True)


@contextmanager
def reported(exit_code: int = EXIT_FAILURE) -> Iterator[None]:
    """Around a command's body: an expected error is reported and exits with ``exit_code``."""
    try:
        yield
    except EXPECTED as exc:
        report(exc)
        raise typer.Exit(exit_code) from None
