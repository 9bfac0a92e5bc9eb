"""TLS settings of a server (control plane, gateway) and of a client (CLI, agent, gateway),
each turned into an `ssl.SSLContext` in one place (docs/security-tls.md).

Both sides refuse anything older than TLS 1.2. A client verifies the server's certificate and
host name, against its CA bundle when it has one (a private CA), else against the system's.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


class TLSFileError(OSError):
    """A certificate, key or CA file that cannot be read or used; the message names it."""


@contextmanager
def _loading(what: str, path: Path) -> Iterator[None]:
    """Say which file failed: OpenSSL's own errors name none (`[SSL] PEM lib`)."""
    try:
        yield
    except ssl.SSLError as exc:
        raise TLSFileError(f"{what} {path}: not usable: {exc.reason or exc}") from exc
    except OSError as exc:
        raise TLSFileError(f"{what} {path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class ServerTLS:
    """What a server needs to serve HTTPS, and optionally to verify client certificates."""

    cert: Path
    """PEM certificate chain of the server (its own certificate first)."""
    key: Path
    """PEM private key of that certificate."""
    client_ca: Path | None = None
    """PEM CA certificates that client certificates must chain to (mutual TLS). A client
    that presents a certificate not signed by them is refused."""
    client_cert_required: bool = False
    """Refuse clients that present no certificate at all (needs `client_ca`)."""

    def __post_init__(self) -> None:
        if self.client_cert_required and self.client_ca is None:
            raise ValueError("client_cert_required needs client_ca")

    def context(self) -> ssl.SSLContext:
        """A server context; TLSFileError names a file that cannot be used."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = MINIMUM_VERSION
        with _loading("TLS certificate or key", self.cert):
            context.load_cert_chain(self.cert, self.key)
        if self.client_ca is not None:
            with _loading("client CA", self.client_ca):
                context.load_verify_locations(self.client_ca)
            required = self.client_cert_required
            context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
        return context


@dataclass(frozen=True)
class ClientTLS:
    """How a client verifies servers, and the certificate it presents if asked (mutual TLS)."""

    ca_bundle: Path | None = None
    """PEM CA certificates to verify servers against, instead of the system's."""
    cert: Path | None = None
    """PEM client certificate, for a server that verifies clients."""
    key: Path | None = None
    """Its private key; default: in the `cert` file."""

    def __post_init__(self) -> None:
        if self.key is not None and self.cert is None:
            raise ValueError("a client key needs its certificate")

    def context(self) -> ssl.SSLContext:
        """A client context; TLSFileError names a file that cannot be used."""
        if self.ca_bundle is None:
            context = ssl.create_default_context()
        else:
            # Only the bundle's CAs: a private fleet trusts its own CA, not every public one.
            with _loading("CA bundle", self.ca_bundle):
                context = ssl.create_default_context(cafile=self.ca_bundle)
        context.minimum_version = MINIMUM_VERSION
        if self.cert is not None:
            with _loading("client certificate or key", self.cert):
                context.load_cert_chain(self.cert, self.key)
        return context


def trust(context: ssl.SSLContext, ca_file: Path) -> None:
    """Add the CA certificates of `ca_file` to those `context` already trusts."""
    with _loading("CA bundle", ca_file):
        context.load_verify_locations(ca_file)


def client_tls(
    ca_bundle: Path | str | None, cert: Path | str | None = None, key: Path | str | None = None
) -> ClientTLS | None:
    """A ClientTLS for the given files, or None when there are none (the system's CAs);
    ValueError for a key without its certificate."""
    if ca_bundle is None and cert is None and key is None:
        return None
    return ClientTLS(
        Path(ca_bundle) if ca_bundle else None,
        Path(cert) if cert else None,
        Path(key) if key else None,
    )
