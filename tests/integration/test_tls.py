"""The whole path over TLS, with certificates the test makes (issue 11, item 3).

One control plane verifies client certificates (mutual TLS) and runs its controllers: an agent
joins it presenting a certificate made by `inferplane certs`, runs a reference engine replica,
and a gateway serving HTTPS syncs from it presenting its own; the official `openai` client gets
a chat completion through the gateway, trusting only the test's CA. Another control plane
serves one-way TLS with trustme certificates: an agent and the CLI verify it with a CA bundle.
Clients without the CA, dialling a name the certificate lacks, or speaking plain HTTP to an
HTTPS port are refused, and the server goes on serving.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import trustme
from cryptography import x509

from inferplane import client as api_client
from inferplane import tls
from inferplane.api.meta import API_VERSION
from tests.integration import manifests
from tests.support import pki, tiny_model
from tests.support.agent_process import AgentProcess
from tests.support.control import ControlProcess
from tests.support.engine_process import wait_for
from tests.support.gateway_process import GatewayProcess, StubProcess, api_key, endpoint, service

pytestmark = pytest.mark.integration

SYSTEM = "inferplane-system"
NS = "default"
SERVER_NAME = "cp.inferplane.test"
"""The DNS name on the `inferplane certs` server certificate (with IP 127.0.0.1); `localhost`
is on no certificate, so dialling it is dialling the wrong host name."""


@dataclass(frozen=True)
class Certs:
    """What `inferplane certs` made for the mutual-TLS fleet, and a stranger's client cert."""

    server: pki.ServerFiles
    agent: pki.ClientFiles
    gateway: pki.ClientFiles
    operator: pki.ClientFiles
    stranger: pki.ClientFiles
    """Signed by another CA: refused by a control plane that trusts only ours."""


def certs_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "inferplane", "certs", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    out = tmp_path_factory.mktemp("pki")
    certs_cli("ca", "--out", str(out))
    certs_cli("server", "--ca", str(out), "--name", SERVER_NAME, "--ip", "127.0.0.1", "--out", str(out))  # noqa: E501  # fmt: skip
    for name in ("agent-tls-a", "gateway", "operator"):
        certs_cli("client", "--ca", str(out), "--name", name, "--out", str(out))

    def client(name: str) -> pki.ClientFiles:
        return pki.ClientFiles(out / f"{name}.crt", out / f"{name}.key")

    server = pki.ServerFiles(out / "ca.crt", out / f"{SERVER_NAME}.crt", out / f"{SERVER_NAME}.key")
    stranger = pki.client_files(trustme.CA(), out / "stranger", "agent-tls-a")
    return Certs(server, client("agent-tls-a"), client("gateway"), client("operator"), stranger)


@pytest.fixture(scope="module")
def mutual(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[ControlProcess]:
    """A control plane that refuses clients without a certificate our CA signed."""
    flags = ["--client-ca", str(certs.server.ca), "--client-cert-required"]
    process = ControlProcess(
        tmp_path_factory.mktemp("mutual"), extra_args=flags, tls=certs.server, client=certs.operator
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def one_way(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlProcess]:
    """A control plane on HTTPS with trustme certificates, asking no client certificate."""
    base = tmp_path_factory.mktemp("one-way")
    files = pki.server_files(trustme.CA(), base / "pki")
    process = ControlProcess(base / "control", extra_args=["--no-controllers"], tls=files)
    process.start()
    yield process
    process.stop()


def admin(control: ControlProcess, client: pki.ClientFiles | None = None) -> api_client.Client:
    assert control.tls is not None
    pair = (client.cert, client.key) if client is not None else (None, None)
    files = tls.ClientTLS(control.tls.ca, *pair)
    return api_client.Client(control.url, control.admin_token, tls=files)


def create_key(api: api_client.Client, name: str, namespace: str, role: str, **spec: Any) -> str:
    body = manifests.apikey(name, namespace, role)
    body["spec"].update(spec)
    token: str = api.create(body)["status"]["token"]
    return token


def agent_flags(ca: Path, client: pki.ClientFiles | None) -> list[str]:
    flags = ["--ca-bundle", str(ca)]
    if client is not None:
        flags += ["--client-cert", str(client.cert), "--client-key", str(client.key)]
    return flags


def phase(api: api_client.Client, kind: str, name: str, namespace: str | None = None) -> Any:
    try:
        return (api.get(kind, name, namespace=namespace).get("status") or {}).get("phase")
    except api_client.NotFound:
        return None


def heartbeat_seen(api: api_client.Client, cluster: str) -> bool:
    """The agent joined and heartbeats (with --no-controllers nothing derives the phase)."""
    try:
        status = api.get("Cluster", cluster).get("status") or {}
    except api_client.NotFound:
        return False
    return bool(status.get("lastHeartbeatTime"))


def demo(model_dir: Path) -> list[dict[str, Any]]:
    meta = {"name": "tiny", "namespace": NS}
    engine = {"recipe": "reference", "args": ["--kv-cache-memory", "8MiB"]}
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "Model",
            "metadata": meta,
            "spec": {"versions": [{"name": "v1", "source": f"file://{model_dir}"}]},
        },
        {
            "apiVersion": API_VERSION,
            "kind": "Deployment",
            "metadata": meta,
            "spec": {"model": "tiny", "replicas": 1, "engine": engine},
        },
        {
            "apiVersion": API_VERSION,
            "kind": "Service",
            "metadata": meta,
            "spec": {"modelName": "tiny", "routes": [{"deployment": "tiny"}]},
        },
    ]


def openai_client(
    gateway: GatewayProcess, key: str, ca: Path | None, *, host: str = "127.0.0.1"
) -> openai.OpenAI:
    """The official client dialling `host`, trusting only `ca` (None: the system's CAs)."""
    verify = ssl.create_default_context(cafile=ca) if ca is not None else True
    http = httpx.Client(verify=verify, timeout=60)
    url = f"https://{host}:{gateway.port}/v1"
    return openai.OpenAI(base_url=url, api_key=key, http_client=http, max_retries=0)


def chat(client: openai.OpenAI) -> int:
    """Tokens of a chat completion, generated to the end of max_tokens (ignore_eos: a random
    model may end at once)."""
    answer = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=4,
        temperature=0,
        extra_body={"ignore_eos": True},
    )
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None
    return answer.usage.completion_tokens


def answers(client: openai.OpenAI) -> bool:
    try:
        return chat(client) == 4
    except openai.APIStatusError:
        return False  # not routed yet: the replica or its Endpoint is still coming


def cli(config: Path, *args: str, server: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERPLANE_")}
    env |= {"INFERPLANE_CONFIG": str(config), "HOME": str(config.parent)}
    if server is not None:
        env["INFERPLANE_SERVER"] = server
    command = [sys.executable, "-m", "inferplane", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def refused_plain_http(port: int) -> bytes:
    """What a plain-HTTP request to an HTTPS port gets before the server closes (no hang:
    the limit is a guard, not a measurement)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        return received


@pytest.mark.timeout(300)
def test_the_whole_path_over_mutual_tls_serves_a_chat_completion(
    mutual: ControlProcess, certs: Certs, tmp_path: Path
) -> None:
    model_dir = tiny_model.make_tiny_model(tmp_path / "tiny")
    ca = certs.server.ca
    with admin(mutual, certs.operator) as api:
        join = create_key(api, "join-tls-a", SYSTEM, "join", cluster="tls-a")
        gateway_token = create_key(api, "gw-tls", SYSTEM, "gateway")
        user_key = create_key(api, "user-tls", NS, "viewer")
        for obj in demo(model_dir):
            api.apply(obj)
        agent = AgentProcess(mutual.url, "", "tls-a", tmp_path / "agent")
        agent.start("--join-token", join, *agent_flags(ca, certs.agent))
        gateway = GatewayProcess(
            tmp_path / "gw",
            control=mutual.url,
            token=gateway_token,
            tls=certs.server,
            extra=["--ca-bundle", str(ca)],
        )
        gateway.extra += ["--client-cert", str(certs.gateway.cert)]
        gateway.extra += ["--client-key", str(certs.gateway.key)]
        gateway.workdir.mkdir()
        try:
            wait_for(lambda: phase(api, "Cluster", "tls-a") == "Ready", timeout=60, what="join")
            gateway.start()
            with openai_client(gateway, user_key, ca) as client:
                wait_for(lambda: answers(client), timeout=180, what="a completion")
                assert chat(client) == 4
            assert phase(api, "Replica", replica_name(api), NS) == "Ready"

            # Plain HTTP to the gateway's HTTPS port: closed, and the next request served.
            assert not refused_plain_http(gateway.port).startswith(b"HTTP/")
            with openai_client(gateway, user_key, ca) as client:
                assert chat(client) == 4

            # The CLI, with a context that holds the CA bundle and a client certificate.
            config = tmp_path / "cli" / "config"
            config.parent.mkdir()
            client_flags = agent_flags(ca, certs.operator)
            token = ["--token", mutual.admin_token]
            logged = cli(config, "login", mutual.url, *token, "--context", "tls", *client_flags)
            assert logged.returncode == 0, logged.stderr
            listed = cli(config, "get", "replicas", "-n", NS)
            assert listed.returncode == 0, listed.stderr
            assert "Ready" in listed.stdout and "tls-a" in listed.stdout
        finally:
            gateway.stop()
            agent.stop()
        assert "Traceback" not in gateway.log_path.read_text()


def replica_name(api: api_client.Client) -> str:
    found = api.list("Replica", namespace=NS).items
    assert len(found) == 1, found
    name: str = found[0]["metadata"]["name"]
    return name


@pytest.mark.parametrize("presented", ["none", "stranger"])
def test_an_agent_without_a_certificate_of_our_ca_is_refused(
    mutual: ControlProcess, certs: Certs, tmp_path: Path, presented: str
) -> None:
    cluster = f"tls-{presented}"
    client = {"none": None, "stranger": certs.stranger}[presented]
    with admin(mutual, certs.operator) as api:
        join = create_key(api, f"join-{cluster}", SYSTEM, "join", cluster=cluster)
        agent = AgentProcess(mutual.url, "", cluster, tmp_path / "agent")
        agent.start("--join-token", join, *agent_flags(certs.server.ca, client))
        assert agent.process is not None
        try:
            code = agent.process.wait(timeout=60)
        finally:
            agent.stop()
        assert code != 0
        log = agent.log()
        assert f"joining as cluster {cluster!r} failed" in log
        assert "does not accept this client's certificate" in log, log
        assert phase(api, "Cluster", cluster) is None
        with pytest.raises(api_client.NotFound):
            api.get("ApiKey", f"agent-{cluster}", namespace=SYSTEM)


def test_a_client_without_the_ca_or_dialling_another_name_is_refused(
    mutual: ControlProcess, certs: Certs, tmp_path: Path
) -> None:
    # The system's CAs do not know ours: certificate verify failed.
    untrusting = api_client.Client(mutual.url, mutual.admin_token)
    with untrusting, pytest.raises(api_client.UntrustedServer, match="not trusted here"):
        untrusting.list("Cluster")
    # Our CA, but `localhost` is not a name on the certificate.
    elsewhere = mutual.url.replace("127.0.0.1", "localhost")
    files = tls.ClientTLS(certs.server.ca, certs.operator.cert, certs.operator.key)
    misdialled = api_client.Client(elsewhere, mutual.admin_token, tls=files)
    with misdialled, pytest.raises(api_client.UntrustedServer, match="Hostname mismatch"):
        misdialled.list("Cluster")
    # The CLI says the same, and points at the CA bundle.
    missing = cli(tmp_path / "config", "get", "clusters", server=mutual.url)
    assert missing.returncode != 0
    assert "not trusted here" in missing.stderr and "Traceback" not in missing.stderr
    assert "--ca-bundle" in missing.stderr, "the hint says what to give"


def test_plain_http_to_the_control_planes_https_port_is_closed_and_it_serves_on(
    mutual: ControlProcess,
) -> None:
    assert not refused_plain_http(mutual.port).startswith(b"HTTP/")
    with mutual.http() as http:
        assert http.get("/readyz").status_code == 200


def test_one_way_tls_an_agent_and_the_cli_verify_the_control_plane_with_a_ca_bundle(
    one_way: ControlProcess, tmp_path: Path
) -> None:
    assert one_way.tls is not None
    ca = one_way.tls.ca
    with admin(one_way) as api:
        join = create_key(api, "join-tls-b", SYSTEM, "join", cluster="tls-b")
        agent = AgentProcess(one_way.url, "", "tls-b", tmp_path / "agent")
        agent.start("--join-token", join, *agent_flags(ca, None))
        try:
            wait_for(lambda: heartbeat_seen(api, "tls-b"), timeout=60, what="join")
        finally:
            agent.stop()
    config = tmp_path / "cli" / "config"
    config.parent.mkdir()
    token = ["--token", one_way.admin_token]
    logged = cli(config, "login", one_way.url, *token, "--ca-bundle", str(ca))
    assert logged.returncode == 0, logged.stderr
    listed = cli(config, "get", "clusters")
    assert listed.returncode == 0, listed.stderr
    assert "tls-b" in listed.stdout
    # Without the CA bundle (another config), the same command is refused.
    refused = cli(tmp_path / "bare", "get", "clusters", server=one_way.url)
    assert refused.returncode != 0 and "not trusted here" in refused.stderr


def test_the_gateway_refuses_clients_without_the_ca_or_dialling_another_name(
    certs: Certs, tmp_path: Path
) -> None:
    gateway = GatewayProcess(tmp_path, config=[api_key("k", "sk-tls")], tls=certs.server).start()
    try:
        untrusting = openai_client(gateway, "sk-tls", None)
        with untrusting, pytest.raises(openai.APIConnectionError) as untrusted:
            untrusting.models.list()
        assert "CERTIFICATE_VERIFY_FAILED" in repr(cause_chain(untrusted.value))
        misdialled = openai_client(gateway, "sk-tls", certs.server.ca, host="localhost")
        with misdialled, pytest.raises(openai.APIConnectionError) as mismatch:
            misdialled.models.list()
        assert "Hostname mismatch" in repr(cause_chain(mismatch.value))
        assert not refused_plain_http(gateway.port).startswith(b"HTTP/")
        with openai_client(gateway, "sk-tls", certs.server.ca) as trusting:
            assert trusting.models.list().data == []
    finally:
        gateway.stop()


def cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def served_serial(control: ControlProcess) -> int:
    """The serial number of the certificate the control plane presents now."""
    assert control.tls is not None
    context = pki.client_context(control.tls.ca)
    with (
        socket.create_connection(("127.0.0.1", control.port), timeout=10) as sock,
        context.wrap_socket(sock, server_hostname="127.0.0.1") as wrapped,
    ):
        der = wrapped.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def heartbeat_since(api: api_client.Client, cluster: str, moment: datetime) -> bool:
    beat = (api.get("Cluster", cluster).get("status") or {}).get("lastHeartbeatTime")
    return bool(beat) and datetime.fromisoformat(beat) > moment


def test_a_rotated_server_certificate_is_served_after_a_restart_and_the_agent_carries_on(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    files = pki.server_files(ca, tmp_path / "pki")
    control = ControlProcess(tmp_path / "control", extra_args=["--no-controllers"], tls=files)
    agent = AgentProcess(control.url, "", "tls-r", tmp_path / "agent")
    try:
        control.start()
        with admin(control) as api:
            join = create_key(api, "join-tls-r", SYSTEM, "join", cluster="tls-r")
        agent.start("--join-token", join, *agent_flags(files.ca, None))
        with admin(control) as api:
            wait_for(lambda: heartbeat_seen(api, "tls-r"), timeout=60, what="join")
        before = served_serial(control)
        # Rotation as docs/security-tls.md has it: a new certificate in place, then a restart.
        pki.server_files(ca, tmp_path / "pki")
        control.stop()
        restarted = datetime.now(UTC)
        control.start()
        assert served_serial(control) != before
        with admin(control) as api:
            wait_for(
                lambda: heartbeat_since(api, "tls-r", restarted),
                timeout=60,
                what="a heartbeat through the new certificate",
            )
        assert agent.process is not None and agent.process.poll() is None
    finally:
        agent.stop()
        control.stop()


@pytest.mark.parametrize("trusted", [True, False])
def test_the_gateway_verifies_an_https_upstream_against_its_upstream_ca_bundle(
    tmp_path: Path, trusted: bool
) -> None:
    private = pki.server_files(trustme.CA(), tmp_path / "upstream-pki")
    upstream = StubProcess(tmp_path, "private", tls=private).start()
    config = [
        service("private", [{"deployment": "p"}]),
        endpoint("p-0", upstream.url, "p"),
        api_key("k", "sk-tls"),
    ]
    extra = ["--upstream-ca-bundle", str(private.ca)] if trusted else []
    gateway = GatewayProcess(tmp_path, config=config, extra=extra).start()
    try:
        body = {"model": "private", "messages": [{"role": "user", "content": "hi"}]}
        with gateway.http("sk-tls") as http:
            answer = http.post("/v1/chat/completions", json=body)
        if trusted:
            assert answer.status_code == 200, answer.text
            assert answer.json()["choices"][0]["message"]["content"] == "answer from private"
        else:
            assert answer.status_code >= 500, "the system's CAs do not know the private one"
            assert upstream.stats()["requests"] == 0, "no request crossed an unverified link"
    finally:
        gateway.stop()
        upstream.stop()
