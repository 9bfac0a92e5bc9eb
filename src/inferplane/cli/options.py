"""Options shared by several commands, declared once so flags and help read the same everywhere."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from inferplane import tls
from inferplane.api import registry
from inferplane.cli import errors


class OutputFormat(StrEnum):
    yaml = "yaml"
    json = "json"
    wide = "wide"
    name = "name"


Kind = Annotated[
    str,
    typer.Argument(
        help="Kind of object: its name, plural or short name (deployment, deployments, deploy).",
        show_default=False,
    ),
]
Namespace = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="Namespace to work in; defaults to the context's namespace ('default').",
        show_default=False,
    ),
]
AllNamespaces = Annotated[
    bool,
    typer.Option("--all-namespaces", "-A", help="Read every namespace the token may read."),
]
Output = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output",
        "-o",
        help="Output format: yaml, json, wide (a table with more columns) or name (kind/name).",
        show_default=False,
    ),
]
LabelSelector = Annotated[
    str | None,
    typer.Option(
        "--selector",
        "-l",
        help="Label selector, e.g. 'app=chat,tier!=dev,env in (a,b)'.",
        show_default=False,
    ),
]
FieldSelector = Annotated[
    str | None,
    typer.Option(
        "--field-selector",
        help="Field selector on dotted paths, e.g. 'spec.cluster=eu-1,metadata.name!=x'.",
        show_default=False,
    ),
]
Watch = Annotated[
    bool,
    typer.Option("--watch", "-w", help="After listing, keep printing changes as they happen."),
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Let the server check and answer as if it wrote; nothing is stored."
    ),
]
Filenames = Annotated[
    list[str],
    typer.Option(
        "--filename",
        "-f",
        help="A YAML or JSON file, a directory of them, or '-' for stdin; repeatable.",
        metavar="PATH",
        show_default=False,
    ),
]
Recursive = Annotated[
    bool,
    typer.Option("--recursive", "-R", help="With a directory, read its subdirectories too."),
]


def scope(
    info: registry.KindInfo, namespace: str | None, all_namespaces: bool, default: str
) -> str | None:
    """The namespace a listing reads: None for every namespace and for fleet-scoped kinds."""
    if namespace and all_namespaces:
        raise errors.UsageError("give either --namespace or --all-namespaces, not both")
    if not info.namespaced or all_namespaces:
        return None
    return namespace or default


ControlUrl = Annotated[
    str, typer.Option("--control", envvar="INFERPLANE_SERVER", help="URL of the control plane.")
]
"""Where a long-running process (agent, gateway) finds the control plane."""

FleetToken = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="INFERPLANE_TOKEN",
        help="Token of a fleet-admin API key. Default on a loopback control plane: the admin "
        "token it wrote in $INFERPLANE_DATA_DIR.",
        show_default=False,
    ),
]
"""The identity of a long-running process that reads or writes across namespaces."""


# -- TLS (docs/security-tls.md) -------------------------------------------------------------

CaBundle = Annotated[
    Path | None,
    typer.Option(
        "--ca-bundle",
        envvar="INFERPLANE_CA_BUNDLE",
        help="PEM file of the CA certificates to verify the control plane's HTTPS certificate "
        "against, instead of the system's (e.g. ca.crt from `inferplane certs ca`).",
        show_default=False,
    ),
]
ClientCert = Annotated[
    Path | None,
    typer.Option(
        "--client-cert",
        envvar="INFERPLANE_CLIENT_CERT",
        help="PEM client certificate to present to a control plane that verifies clients "
        "(mutual TLS; `inferplane certs client`).",
        show_default=False,
    ),
]
ClientKey = Annotated[
    Path | None,
    typer.Option(
        "--client-key",
        envvar="INFERPLANE_CLIENT_KEY",
        help="Private key of --client-cert (default: in the certificate's file).",
        show_default=False,
    ),
]
TlsCert = Annotated[
    Path | None,
    typer.Option(
        "--tls-cert",
        help="Serve HTTPS with this PEM certificate (chain, the server's own first); needs "
        "--tls-key. TLS 1.2 or later.",
        show_default=False,
    ),
]
TlsKey = Annotated[
    Path | None,
    typer.Option("--tls-key", help="Private key of --tls-cert.", show_default=False),
]


def client_tls(ca_bundle: Path | None, cert: Path | None, key: Path | None) -> tls.ClientTLS | None:
    """The client TLS files of a long-running process, checked now: a bad file is a usage
    error at start, not a connection that fails forever after."""
    if key is not None and cert is None:
        raise typer.BadParameter("needs --client-cert", param_hint="--client-key")
    files = tls.client_tls(ca_bundle, cert, key)
    if files is not None:
        _check(files.context, "--ca-bundle" if cert is None else "--ca-bundle/--client-cert")
    return files


def server_tls(
    cert: Path | None,
    key: Path | None,
    *,
    client_ca: Path | None = None,
    client_cert_required: bool = False,
) -> tls.ServerTLS | None:
    """The HTTPS files of a server, checked now; None to serve plain HTTP."""
    if cert is None and key is None:
        if client_ca is not None or client_cert_required:
            flag = "--client-ca" if client_ca is not None else "--client-cert-required"
            raise typer.BadParameter("needs --tls-cert and --tls-key", param_hint=flag)
        return None
    if key is None:
        raise typer.BadParameter("needs --tls-key", param_hint="--tls-cert")
    if cert is None:
        raise typer.BadParameter("needs --tls-cert", param_hint="--tls-key")
    if client_cert_required and client_ca is None:
        raise typer.BadParameter("needs --client-ca", param_hint="--client-cert-required")
    files = tls.ServerTLS(cert, key, client_ca, client_cert_required)
    _check(files.context, "--tls-cert/--tls-key" if client_ca is None else "--tls-cert/--client-ca")
    return files


def ca_file(path: Path | None, flag: str) -> Path | None:
    """A file of CA certificates to trust besides the system's, checked now."""
    if path is not None:
        _check(lambda: tls.trust(ssl.create_default_context(), path), flag)
    return path


def _check(make_context: Callable[[], object], flags: str) -> None:
    try:
        make_context()
    except tls.TLSFileError as exc:
        raise typer.BadParameter(str(exc), param_hint=flags) from exc
