"""Where a client connects: named contexts in a config file, environment overrides, local defaults.

The file (``~/.inferplane/config``, or ``$INFERPLANE_CONFIG``) is YAML shaped like a small
kubeconfig::

    current-context: prod
    contexts:
      - {name: prod, server: https://cp.example.com, token: ..., namespace: team-a,
         ca-bundle: /etc/inferplane/ca.crt}

``INFERPLANE_CONTEXT`` picks a context other than the current one; ``INFERPLANE_SERVER``,
``INFERPLANE_TOKEN``, ``INFERPLANE_NAMESPACE``, ``INFERPLANE_CA_BUNDLE``,
``INFERPLANE_CLIENT_CERT`` and ``INFERPLANE_CLIENT_KEY`` override the chosen context field by
field, so scripts and tests never have to write a file. With neither a file nor the
environment, the client talks to a control plane on this machine with the admin token that
``inferplane control`` wrote at first start: ``make run`` then ``inferplane get ...`` just works.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from inferplane import datadir, tls

DEFAULT_SERVER = "http://127.0.0.1:8470"
DEFAULT_NAMESPACE = "default"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class ConfigError(Exception):
    """The config file cannot be read or written, or names a context that does not exist."""


@dataclass(frozen=True)
class Context:
    """One named way to reach a control plane."""

    name: str
    server: str
    token: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    ca_bundle: str | None = None
    """PEM CA certificates to verify an https:// server against (default: the system's)."""
    client_cert: str | None = None
    """PEM client certificate to present to a server that asks for one (mutual TLS)."""
    client_key: str | None = None
    """Its private key (default: in the certificate's file)."""


TLS_FIELDS = {"ca_bundle": "ca-bundle", "client_cert": "client-cert", "client_key": "client-key"}
"""Context fields and their keys in the file."""


@dataclass
class Config:
    """The whole config file: every context and which one is current."""

    contexts: list[Context] = field(default_factory=list)
    current_context: str | None = None

    def find(self, name: str) -> Context:
        for context in self.contexts:
            if context.name == name:
                return context
        known = ", ".join(c.name for c in self.contexts) or "none"
        raise ConfigError(f"no context named {name!r} (known: {known})")

    def upsert(self, context: Context) -> None:
        """Replace the context of the same name, or add it at the end."""
        self.contexts = [c for c in self.contexts if c.name != context.name] + [context]


@dataclass(frozen=True)
class Connection:
    """What a client needs: resolved from a context, the environment and the defaults."""

    server: str
    token: str | None
    namespace: str
    context: str | None
    """Name of the context used, None when only the environment and defaults applied."""
    tls: tls.ClientTLS | None = None
    """The CA bundle and client certificate, when any is set."""


def config_path() -> Path:
    override = os.environ.get("INFERPLANE_CONFIG")
    return Path(override) if override else Path.home() / ".inferplane" / "config"


def data_dir() -> Path:
    """Where ``inferplane control`` keeps its state, and so its admin token, by default."""
    return datadir.default()


def load(path: Path | None = None) -> Config:
    """Read the config file; a missing file is an empty config, not an error."""
    path = path or config_path()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return Config()
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping")
    return Config(
        contexts=[_context_from(entry, path) for entry in raw.get("contexts") or []],
        current_context=raw.get("current-context"),
    )


def save(config: Config, path: Path | None = None) -> Path:
    """Write the config with mode 0600 from the first byte: it holds bearer tokens."""
    path = path or config_path()
    body: dict[str, Any] = {"current-context": config.current_context}
    body["contexts"] = [_context_to(c) for c in config.contexts]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            yaml.safe_dump(body, out, sort_keys=False)
        path.chmod(0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write config {path}: {exc}") from exc
    return path


def resolve(context_name: str | None = None) -> Connection:
    """Pick a context (named, else $INFERPLANE_CONTEXT, else current); env vars override fields."""
    config = load()
    name = context_name or os.environ.get("INFERPLANE_CONTEXT") or config.current_context
    base = config.find(name) if name else None
    server = os.environ.get("INFERPLANE_SERVER") or (base.server if base else DEFAULT_SERVER)
    token = os.environ.get("INFERPLANE_TOKEN") or (base.token if base else None)
    namespace = os.environ.get("INFERPLANE_NAMESPACE") or (
        base.namespace if base else DEFAULT_NAMESPACE
    )
    if token is None and _is_loopback(server):
        token = local_admin_token()
    return Connection(server, token, namespace, base.name if base else None, _tls(base))


def _tls(base: Context | None) -> tls.ClientTLS | None:
    """The context's CA bundle and client certificate, each overridden by its variable."""
    files = [
        os.environ.get(f"INFERPLANE_{field.upper()}") or (getattr(base, field) if base else None)
        for field in TLS_FIELDS
    ]
    try:
        return tls.client_tls(*files)
    except ValueError as exc:
        raise ConfigError(
            "a client key (client-key, $INFERPLANE_CLIENT_KEY) needs its certificate "
            "(client-cert, $INFERPLANE_CLIENT_CERT)"
        ) from exc


def local_admin_token() -> str | None:
    """The token a local control plane wrote at first start, if there is one and we may read it."""
    try:
        return (data_dir() / "admin-token").read_text().strip() or None
    except OSError:
        return None


def local_admin_token_for(server: str) -> str | None:
    """The local admin token when `server` is a control plane on this machine, else None."""
    return local_admin_token() if _is_loopback(server) else None


def _is_loopback(server: str) -> bool:
    # The local admin token is only ever offered to this machine, never to a remote server.
    return (urlsplit(server).hostname or "") in LOOPBACK_HOSTS


def _context_from(entry: Any, path: Path) -> Context:
    if not isinstance(entry, dict) or not entry.get("name") or not entry.get("server"):
        raise ConfigError(f"config {path}: every context needs a name and a server")
    return Context(
        name=str(entry["name"]),
        server=str(entry["server"]),
        token=entry.get("token"),
        namespace=entry.get("namespace") or DEFAULT_NAMESPACE,
        **{field: entry.get(key) for field, key in TLS_FIELDS.items()},
    )


def _context_to(context: Context) -> dict[str, Any]:
    fields = asdict(context).items()
    return {TLS_FIELDS.get(key, key): value for key, value in fields if value is not None}
