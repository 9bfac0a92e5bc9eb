"""The control plane's settings, one typed source for the CLI flags and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from inferplane import datadir, tls

DEFAULT_PORT = 8470


@dataclass(frozen=True)
class ControlSettings:
    data_dir: Path = field(default_factory=datadir.default)
    """Where the SQLite store and the admin token live; by default where the CLI looks for
    that token (`datadir.default()`: $INFERPLANE_DATA_DIR, else ~/.inferplane)."""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    store_url: str | None = None
    """A SQLAlchemy URL (sqlite:///… or postgresql://…); default: SQLite in data_dir."""
    max_body_bytes: int = 1 << 20
    """Bodies larger than this are refused with 413."""
    watch_history: int = 100_000
    """How many changes the watch log keeps; older resourceVersions answer 410 Gone."""
    compact_interval_seconds: float = 60.0
    event_ttl_seconds: float = 3600.0
    """Events not seen again for this long are deleted."""
    bookmark_interval_seconds: float = 10.0
    """How often a quiet watch gets a BOOKMARK so its client can resume from a recent version."""
    watch_poll_seconds: float = 0.5
    """How often the store is polled for writes by other control-plane replicas."""
    controllers: bool = True
    """Run the reconcile loops (off in tests of the bare API)."""
    log_level: str = "info"
    audit_level: str = "Metadata"
    """What the audit trail keeps of each audited call: None, Metadata or Request (the body)."""
    audit_policy: Path | None = None
    """A YAML file of rules `{level, kinds, verbs}` that override audit_level, first match."""
    audit_retention_seconds: float = 7 * 86400.0
    """Audit records older than this are deleted."""
    secret_key_file: Path | None = None
    """The keys Secrets are sealed with (made 0600 at first start); default data_dir/secret-keys."""
    allow_secret_env: tuple[str, ...] = ()
    """Environment variables of the gateway that an Endpoint's apiKeySecretRef may name."""
    allow_secret_file: tuple[str, ...] = ()
    """Files on the gateway's host that an Endpoint's apiKeySecretRef may name."""
    tls: tls.ServerTLS | None = None
    """Serve HTTPS with this certificate (and verify client certificates); None: plain HTTP."""

    @property
    def secret_keys_path(self) -> Path:
        return self.secret_key_file or self.data_dir / "secret-keys"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"
