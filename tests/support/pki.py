"""Certificates made by a test (trustme): a CA, a server certificate for 127.0.0.1, client
certificates, written as the files the processes are given."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class ServerFiles:
    """What a server is started with (--tls-cert, --tls-key) and what its clients trust."""

    ca: Path
    """PEM certificate of the CA that signed `cert`: the clients' --ca-bundle."""
    cert: Path
    """PEM chain of the server's certificate, issued for 127.0.0.1 only."""
    key: Path


@dataclass(frozen=True)
class ClientFiles:
    """A client certificate and its key (--client-cert, --client-key)."""

    cert: Path
    key: Path


def server_files(ca: trustme.CA, directory: Path, *identities: str) -> ServerFiles:
    """CA.crt plus a server certificate for `identities` (default: 127.0.0.1 alone, so a
    client that dials `localhost` meets a certificate for another name)."""
    directory.mkdir(parents=True, exist_ok=True)
    leaf = ca.issue_cert(*(identities or ("127.0.0.1",)))
    files = ServerFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    ca.cert_pem.write_to_path(str(files.ca))
    for index, blob in enumerate(leaf.cert_chain_pems):
        blob.write_to_path(str(files.cert), append=index > 0)
    leaf.private_key_pem.write_to_path(str(files.key))
    files.key.chmod(0o600)
    return files


def client_files(ca: trustme.CA, directory: Path, name: str) -> ClientFiles:
    """A client certificate for `name`, signed by `ca`."""
    directory.mkdir(parents=True, exist_ok=True)
    leaf = ca.issue_cert(name, common_name=name)
    files = ClientFiles(directory / f"{name}.crt", directory / f"{name}.key")
    leaf.cert_chain_pems[0].write_to_path(str(files.cert))
    leaf.private_key_pem.write_to_path(str(files.key))
    files.key.chmod(0o600)
    return files


def client_context(ca: Path, client: ClientFiles | None = None) -> ssl.SSLContext:
    """What a test's own probes verify a server with: only `ca`, and `client` if given."""
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    return context
