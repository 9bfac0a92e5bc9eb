"""`inferplane certs`: a local CA, and the server and client certificates a multi-host fleet
needs (docs/security-tls.md).

The CA signs a server certificate per host that serves (control plane, gateway) and a client
certificate per agent (mutual TLS). Keys are ECDSA P-256, written 0600 from the first byte;
certificates carry what Python's and OpenSSL's strict verification ask for (key identifiers,
key usage, extended key usage, subject alternative names).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from inferplane.cli import errors

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CA_DAYS = 3650
LEAF_DAYS = 365
BACKDATE = datetime.timedelta(minutes=5)
"""Certificates start a little in the past, so a host whose clock lags still accepts them."""

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
"""A host or client name: also a file name, so no slashes, no leading dot."""

certs_app = typer.Typer(
    name="certs",
    help="""Make a local certificate authority and the TLS certificates of a multi-host fleet:
    one CA, a server certificate per host that serves, a client certificate per agent.

    Examples:

    inferplane certs ca --out ./pki
    inferplane certs server --ca ./pki --name cp.example.com --ip 10.0.0.5 --out ./pki
    inferplane certs client --ca ./pki --name agent-eu-1 --out ./pki
    """,
    no_args_is_help=True,
)


@dataclass(frozen=True)
class Authority:
    """A CA's key and certificate, as `certs ca` writes them."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class Leaf:
    """What a server or client certificate is issued for."""

    common_name: str
    dns_names: tuple[str, ...] = ()
    ips: tuple[IpAddress, ...] = ()
    client: bool = False
    """A client certificate (clientAuth) instead of a server one (serverAuth)."""
    days: int = LEAF_DAYS


def new_authority(common_name: str, *, days: int, now: datetime.datetime) -> Authority:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    cert = (
        _builder(name, name, public, now, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signer=True), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def issue(
    ca: Authority, leaf: Leaf, *, now: datetime.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new key and its certificate, signed by `ca`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, leaf.common_name)])
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if leaf.client else ExtendedKeyUsageOID.SERVER_AUTH
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in leaf.dns_names]
    sans += [x509.IPAddress(ip) for ip in leaf.ips]
    builder = (
        _builder(subject, ca.cert.subject, key.public_key(), now, leaf.days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signer=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, builder.sign(ca.key, hashes.SHA256())


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def _key_usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signer,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signer,
        crl_sign=signer,
        encipher_only=False,
        decipher_only=False,
    )


# -- files --------------------------------------------------------------------------------------


def write_pair(
    out: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, *, force: bool
) -> tuple[Path, Path]:
    """Write STEM.crt (0644) and STEM.key (0600) into `out`; refuse to replace either unless
    `force`."""
    cert_path, key_path = out / f"{stem}.crt", out / f"{stem}.key"
    if not force:
        for path in (cert_path, key_path):
            if path.exists():
                raise errors.UsageError(f"{path} exists; pass --force to replace it")
    out.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(key_path, key_pem, 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def _write(path: Path, data: bytes, mode: int) -> None:
    # O_CREAT with the mode: a private key is never readable by others, not even for a moment.
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    path.chmod(mode)


def load_authority(directory: Path) -> Authority:
    """The CA that `certs ca --out DIRECTORY` wrote."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    for path in (cert_path, key_path):
        if not path.is_file():
            raise errors.UsageError(f"{path} not found: make a CA with `inferplane certs ca`")
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise errors.UsageError(f"{directory}: not a CA written by `certs ca`: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise errors.UsageError(f"{key_path}: not an ECDSA key written by `certs ca`")
    # A mismatched pair would sign certificates that no client can verify against ca.crt.
    if key.public_key() != cert.public_key():
        raise errors.UsageError(f"{key_path} is not the key of {cert_path}")
    return Authority(key, cert)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _until(cert: x509.Certificate) -> str:
    return cert.not_valid_after_utc.strftime("%Y-%m-%d")


# -- commands -----------------------------------------------------------------------------------

Out = Annotated[
    Path, typer.Option("--out", help="Directory to write the files into (created if missing).")
]
CaDir = Annotated[
    Path, typer.Option("--ca", help="Directory of the CA (ca.crt and ca.key from `certs ca`).")
]
Force = Annotated[bool, typer.Option("--force", help="Replace files that already exist.")]


@certs_app.command("ca")
def ca(
    out: Out,
    name: Annotated[
        str, typer.Option("--name", help="Common name of the CA.")
    ] = "inferplane local CA",
    days: Annotated[int, typer.Option("--days", help="Days the CA is valid.", min=1)] = CA_DAYS,
    force: Force = False,
) -> None:
    """Make a certificate authority: OUT/ca.crt (give it to every client as --ca-bundle) and
    OUT/ca.key (mode 0600; keep it off the servers, it signs every certificate).

    Examples:

    inferplane certs ca --out ./pki
    inferplane certs ca --out ./pki --name "acme inferplane CA" --days 1825
    """
    with errors.reported():
        authority = new_authority(name, days=days, now=_now())
        cert_path, key_path = write_pair(out, "ca", authority.key, authority.cert, force=force)
        typer.echo(f"wrote {cert_path} (valid until {_until(authority.cert)}) and {key_path}")


@certs_app.command("server")
def server(
    ca_dir: CaDir,
    names: Annotated[
        list[str],
        typer.Option(
            "--name",
            help="DNS name clients use to reach the server; repeatable. The first also names "
            "the files (NAME.crt, NAME.key).",
            show_default=False,
        ),
    ],
    out: Out,
    ips: Annotated[
        list[str] | None,
        typer.Option(
            "--ip",
            help="IP address clients use to reach the server; repeatable.",
            show_default=False,
        ),
    ] = None,
    days: Annotated[
        int, typer.Option("--days", help="Days the certificate is valid.", min=1)
    ] = LEAF_DAYS,
    force: Force = False,
) -> None:
    """Issue a server certificate for a control plane or a gateway: valid for every --name
    and --ip given (clients check the address they dial against them).

    Examples:

    inferplane certs server --ca ./pki --name cp.example.com --ip 10.0.0.5 --out ./pki
    inferplane certs server --ca ./pki --name gw.example.com --name api.example.com --out ./pki
    inferplane control --host 0.0.0.0 --tls-cert ./pki/cp.example.com.crt --tls-key ./pki/cp.example.com.key
    """  # noqa: E501
    with errors.reported():
        checked = tuple(_name(text, "--name") for text in names)
        leaf = Leaf(checked[0], checked, tuple(_ip(text) for text in ips or []), days=days)
        cert_path, key_path = _issue(ca_dir, leaf, out, force=force)
        typer.echo(f"serve with: --tls-cert {cert_path} --tls-key {key_path}")


@certs_app.command("client")
def client(
    ca_dir: CaDir,
    name: Annotated[
        str,
        typer.Option(
            "--name",
            help="Who the certificate is for, e.g. the agent's cluster name; also "
            "names the files (NAME.crt, NAME.key).",
            show_default=False,
        ),
    ],
    out: Out,
    days: Annotated[
        int, typer.Option("--days", help="Days the certificate is valid.", min=1)
    ] = LEAF_DAYS,
    force: Force = False,
) -> None:
    """Issue a client certificate, for an agent (or a gateway, or the CLI) to present to a
    control plane started with --client-ca (mutual TLS).

    Examples:

    inferplane certs client --ca ./pki --name agent-eu-1 --out ./pki
    inferplane agent --cluster eu-1 --control https://cp.example.com:8470 --ca-bundle ./pki/ca.crt --client-cert ./pki/agent-eu-1.crt --client-key ./pki/agent-eu-1.key
    """  # noqa: E501
    with errors.reported():
        leaf = Leaf(_name(name, "--name"), client=True, days=days)
        cert_path, key_path = _issue(ca_dir, leaf, out, force=force)
        typer.echo(f"present with: --client-cert {cert_path} --client-key {key_path}")


def _issue(ca_dir: Path, leaf: Leaf, out: Path, *, force: bool) -> tuple[Path, Path]:
    authority = load_authority(ca_dir)
    key, cert = issue(authority, leaf, now=_now())
    cert_path, key_path = write_pair(out, leaf.common_name, key, cert, force=force)
    typer.echo(f"wrote {cert_path} (valid until {_until(cert)}) and {key_path}")
    return cert_path, key_path


def _name(text: str, flag: str) -> str:
    if not NAME.fullmatch(text):
        raise typer.BadParameter(
            f"{text!r}: letters, digits, '.', '-' and '_', starting and ending with a letter or "
            "digit",
            param_hint=flag,
        )
    return text


def _ip(text: str) -> IpAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an IP address", param_hint="--ip") from None


def register(app: typer.Typer) -> None:
    app.add_typer(certs_app, rich_help_panel="Settings")
