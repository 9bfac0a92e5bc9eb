"""``inferplane certs``: a CA and the server and client certificates it signs carry the names,
key usages and validity a strict TLS client checks, keys are 0600 from the start, and a
handshake between them succeeds in memory; bad arguments are told plainly."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import Result

from inferplane import tls
from inferplane.cli import certs
from tests.unit.cli.conftest import Cli

NOW = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


@pytest.fixture
def pki(cli: Cli, tmp_path: Path) -> Path:
    out = tmp_path / "pki"
    done = cli("certs", "ca", "--out", str(out))
    assert done.exit_code == 0, done.output
    return out


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that lets everyone read new files: modes must not depend on it."""
    before = os.umask(0)
    yield
    os.umask(before)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def ext(
    cert: x509.Certificate, kind: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(kind)


def handshake(client: ssl.SSLContext, server: ssl.SSLContext, hostname: str) -> None:
    """A whole TLS handshake over memory buffers; the ssl error of either side if it fails."""
    wires = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    near = client.wrap_bio(wires[0], wires[1], server_hostname=hostname)
    far = server.wrap_bio(wires[2], wires[3], server_side=True)
    done = {near: False, far: False}
    for _ in range(10):
        for side in (near, far):
            if not done[side]:
                try:
                    side.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
        wires[2].write(wires[1].read())
        wires[0].write(wires[3].read())
        if all(done.values()):
            break
    # TLS 1.3: the server judges the client's certificate after the client's last flight.
    far.write(b"x")
    wires[0].write(wires[3].read())
    assert near.read(1) == b"x"


def strict_client(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = tls.ClientTLS(ca, cert, key).context()
    context.verify_flags |= ssl.VERIFY_X509_STRICT  # what Python 3.13 checks by default
    return context


# -- what the certificates say ------------------------------------------------------------------


def test_the_ca_signs_certificates_only_and_is_valid_for_its_days() -> None:
    authority = certs.new_authority("acme CA", days=30, now=NOW)
    cert = authority.cert
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "acme CA"
    cert.verify_directly_issued_by(cert)
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical and basic.value == x509.BasicConstraints(ca=True, path_length=0)
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    assert cert.not_valid_before_utc == NOW - certs.BACKDATE
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=30)
    assert isinstance(authority.key, ec.EllipticCurvePrivateKey)


def test_a_server_certificate_names_every_host_and_serves_only() -> None:
    authority = certs.new_authority("ca", days=10, now=NOW)
    ips = (ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("::1"))
    leaf = certs.Leaf("cp.example.com", ("cp.example.com", "api.example.com"), ips, days=7)
    _, cert = certs.issue(authority, leaf, now=NOW)
    cert.verify_directly_issued_by(authority.cert)
    names = ext(cert, x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["cp.example.com", "api.example.com"]
    assert names.get_values_for_type(x509.IPAddress) == list(ips)
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = ext(cert, x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert ext(cert, x509.BasicConstraints).value.ca is False
    issuer_key = ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier
    assert issuer_key == ext(authority.cert, x509.SubjectKeyIdentifier).value.digest
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=7)


def test_a_client_certificate_is_for_client_authentication_only() -> None:
    authority = certs.new_authority("ca", days=10, now=NOW)
    _, cert = certs.issue(authority, certs.Leaf("agent-eu-1", client=True), now=NOW)
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "agent-eu-1"
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.SubjectAlternativeName)


# -- the commands: files, modes, and a handshake between what they wrote -----------------------


@pytest.mark.usefixtures("open_umask")
def test_ca_writes_its_certificate_readable_and_its_key_0600(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "new" / "pki"
    done = cli("certs", "ca", "--out", str(out), "--name", "acme CA", "--days", "90")
    assert done.exit_code == 0, done.output
    assert mode(out / "ca.key") == 0o600 and mode(out / "ca.crt") == 0o644
    cert = load(out / "ca.crt")
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "acme CA"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=90) + certs.BACKDATE
    assert f"wrote {out / 'ca.crt'}" in done.output


@pytest.mark.usefixtures("open_umask")
def test_server_certificate_files_and_a_strict_handshake_by_name_and_ip(
    cli: Cli, pki: Path
) -> None:
    done = cli(
        "certs", "server", "--ca", str(pki), "--name", "cp.example.com",
        "--name", "api.example.com", "--ip", "127.0.0.1", "--out", str(pki), "--days", "30",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    cert_path, key_path = pki / "cp.example.com.crt", pki / "cp.example.com.key"
    assert mode(key_path) == 0o600 and mode(cert_path) == 0o644
    assert f"--tls-cert {cert_path} --tls-key {key_path}" in done.output
    cert = load(cert_path)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=30) + certs.BACKDATE
    server = tls.ServerTLS(cert_path, key_path).context()
    for hostname in ("cp.example.com", "api.example.com", "127.0.0.1"):
        handshake(strict_client(pki / "ca.crt"), server, hostname)
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(strict_client(pki / "ca.crt"), server, "other.example.com")


@pytest.mark.usefixtures("open_umask")
def test_client_certificate_passes_mutual_tls_and_another_cas_does_not(
    cli: Cli, pki: Path, tmp_path: Path
) -> None:
    cli("certs", "server", "--ca", str(pki), "--name", "cp", "--out", str(pki))
    done = cli("certs", "client", "--ca", str(pki), "--name", "agent-eu-1", "--out", str(pki))
    assert done.exit_code == 0, done.output
    cert, key = pki / "agent-eu-1.crt", pki / "agent-eu-1.key"
    assert mode(key) == 0o600
    assert f"--client-cert {cert} --client-key {key}" in done.output
    server = tls.ServerTLS(pki / "cp.crt", pki / "cp.key", pki / "ca.crt", True).context()
    handshake(strict_client(pki / "ca.crt", cert, key), server, "cp")
    other = tmp_path / "other"
    cli("certs", "ca", "--out", str(other))
    cli("certs", "client", "--ca", str(other), "--name", "agent-eu-1", "--out", str(other))
    stranger = strict_client(pki / "ca.crt", other / "agent-eu-1.crt", other / "agent-eu-1.key")
    with pytest.raises(ssl.SSLError):
        handshake(stranger, server, "cp")
    with pytest.raises(ssl.SSLError):
        handshake(strict_client(pki / "ca.crt"), server, "cp")  # no certificate at all


def test_existing_files_are_kept_unless_forced(cli: Cli, pki: Path) -> None:
    key_before = (pki / "ca.key").read_bytes()
    again = cli("certs", "ca", "--out", str(pki))
    assert again.exit_code == 1
    assert f"error: {pki / 'ca.crt'} exists; pass --force to replace it" in again.output
    assert (pki / "ca.key").read_bytes() == key_before
    forced = cli("certs", "ca", "--out", str(pki), "--force")
    assert forced.exit_code == 0, forced.output
    assert (pki / "ca.key").read_bytes() != key_before
    assert mode(pki / "ca.key") == 0o600


# -- bad arguments --------------------------------------------------------------------------------


def refusal(result: Result, code: int) -> str:
    """The output of a command that must have exited with `code` and no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize(
    ("flag", "value", "phrases"),
    [
        ("--name", "../etc/x", ["--name", "'../etc/x': letters, digits"]),
        ("--name", ".hidden", ["--name", "starting and ending with a letter or digit"]),
        ("--ip", "10.0.0.300", ["--ip", "'10.0.0.300' is not an IP address"]),
        ("--days", "0", ["--days", "greater than or equal to 1"]),
    ],
)
def test_a_bad_server_argument_names_its_flag(
    cli: Cli, pki: Path, flag: str, value: str, phrases: list[str]
) -> None:
    args = {"--name": "cp", "--ip": "127.0.0.1", "--days": "30"} | {flag: value}
    flat = [item for pair in args.items() for item in pair]
    result = cli("certs", "server", "--ca", str(pki), *flat, "--out", str(pki))
    output = refusal(result, 2)
    assert all(phrase in output for phrase in phrases), output
    assert not list(pki.glob("cp.*")), "nothing written"


def test_a_server_certificate_needs_a_name(cli: Cli, pki: Path) -> None:
    result = cli("certs", "server", "--ca", str(pki), "--ip", "127.0.0.1", "--out", str(pki))
    assert "Missing option '--name'" in refusal(result, 2)


def test_a_missing_ca_says_how_to_make_one(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    result = cli("certs", "client", "--ca", str(empty), "--name", "a", "--out", str(tmp_path))
    said = f"{empty / 'ca.crt'} not found: make a CA with `inferplane certs ca`"
    assert said in refusal(result, 1)


def test_a_ca_directory_that_is_not_ours_is_refused(cli: Cli, pki: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "ca.crt").write_text("not a certificate")
    (broken / "ca.key").write_bytes((pki / "ca.key").read_bytes())
    result = cli("certs", "client", "--ca", str(broken), "--name", "a", "--out", str(tmp_path))
    assert f"{broken}: not a CA written by `certs ca`" in refusal(result, 1)

    (broken / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (broken / "ca.key").write_bytes(pem)
    result = cli("certs", "client", "--ca", str(broken), "--name", "a", "--out", str(tmp_path))
    assert "not an ECDSA key written by `certs ca`" in refusal(result, 1)


def test_a_ca_key_of_another_ca_is_refused(cli: Cli, pki: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    cli("certs", "ca", "--out", str(other))
    (other / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    result = cli("certs", "server", "--ca", str(other), "--name", "cp", "--out", str(tmp_path))
    assert f"{other / 'ca.key'} is not the key of {other / 'ca.crt'}" in refusal(result, 1)
