"""Where the client connects: contexts, environment overrides and the local defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferplane import clientconfig

ENV = ("INFERPLANE_SERVER", "INFERPLANE_TOKEN", "INFERPLANE_NAMESPACE", "INFERPLANE_CONTEXT")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config path and data dir of our own, and none of the caller's overrides."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INFERPLANE_CONFIG", str(tmp_path / "conf" / "config"))
    monkeypatch.setenv("INFERPLANE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def save_contexts(*contexts: clientconfig.Context, current: str | None = None) -> None:
    clientconfig.save(clientconfig.Config(list(contexts), current))


PROD = clientconfig.Context("prod", "https://cp.example.com", "prod-token", "team-a")
LOCAL = clientconfig.Context("local", "http://127.0.0.1:9000", None)


def test_nothing_configured_means_the_local_control_plane_and_its_admin_token(
    isolated: Path,
) -> None:
    (isolated / "data").mkdir()
    (isolated / "data" / "admin-token").write_text("admin-secret\n")
    conn = clientconfig.resolve()
    assert conn == clientconfig.Connection("http://127.0.0.1:8470", "admin-secret", "default", None)


def test_without_an_admin_token_file_there_is_no_token() -> None:
    assert clientconfig.resolve().token is None


def test_the_current_context_is_used() -> None:
    save_contexts(PROD, LOCAL, current="prod")
    conn = clientconfig.resolve()
    assert (conn.server, conn.token, conn.namespace, conn.context) == (
        "https://cp.example.com",
        "prod-token",
        "team-a",
        "prod",
    )


def test_a_named_context_wins_over_the_current_one() -> None:
    save_contexts(PROD, LOCAL, current="prod")
    assert clientconfig.resolve("local").server == "http://127.0.0.1:9000"


def test_the_environment_overrides_field_by_field(monkeypatch: pytest.MonkeyPatch) -> None:
    save_contexts(PROD, current="prod")
    monkeypatch.setenv("INFERPLANE_NAMESPACE", "team-b")
    conn = clientconfig.resolve()
    assert (conn.server, conn.token, conn.namespace) == (PROD.server, PROD.token, "team-b")


def test_the_local_admin_token_is_never_sent_to_a_remote_server(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated / "data").mkdir()
    (isolated / "data" / "admin-token").write_text("admin-secret")
    monkeypatch.setenv("INFERPLANE_SERVER", "https://cp.example.com")
    assert clientconfig.resolve().token is None


def test_an_unknown_context_is_an_error_naming_the_known_ones() -> None:
    save_contexts(PROD, current="prod")
    with pytest.raises(clientconfig.ConfigError, match=r"no context named 'nope'.*prod"):
        clientconfig.resolve("nope")


def test_the_config_file_is_private_and_round_trips() -> None:
    path = clientconfig.save(clientconfig.Config([PROD, LOCAL], "local"))
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = clientconfig.load()
    assert loaded.contexts == [PROD, LOCAL]
    assert loaded.current_context == "local"


def test_upsert_replaces_a_context_of_the_same_name() -> None:
    config = clientconfig.Config([PROD, LOCAL])
    config.upsert(clientconfig.Context("prod", "https://other"))
    assert [c.server for c in config.contexts] == ["http://127.0.0.1:9000", "https://other"]


def test_a_malformed_config_is_a_config_error(isolated: Path) -> None:
    path = clientconfig.config_path()
    path.parent.mkdir(parents=True)
    path.write_text("contexts: [{name: x}]\n")
    with pytest.raises(clientconfig.ConfigError, match="needs a name and a server"):
        clientconfig.load()


def test_the_context_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    save_contexts(PROD, LOCAL, current="prod")
    monkeypatch.setenv("INFERPLANE_CONTEXT", "local")
    assert clientconfig.resolve().context == "local"
