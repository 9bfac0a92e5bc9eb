"""One default data directory for the control plane and the CLI, $INFERPLANE_DATA_DIR honoured."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferplane import clientconfig, datadir
from inferplane.control.settings import ControlSettings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own and no $INFERPLANE_DATA_DIR."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(datadir.ENV, raising=False)
    return tmp_path / "home"


def test_without_the_variable_it_is_in_home(home: Path) -> None:
    assert datadir.default() == home / ".inferplane" == datadir.in_home()


@pytest.mark.parametrize("unset", ["", None])
def test_an_empty_variable_counts_as_unset(
    home: Path, monkeypatch: pytest.MonkeyPatch, unset: str | None
) -> None:
    if unset is not None:
        monkeypatch.setenv(datadir.ENV, unset)
    assert datadir.default() == home / ".inferplane"


def test_the_variable_wins_and_a_tilde_is_expanded(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(datadir.ENV, "~/state")
    assert datadir.default() == home / "state"


def test_control_settings_follow_the_variable(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(datadir.ENV, str(tmp_path / "state"))
    settings = ControlSettings()
    assert settings.data_dir == tmp_path / "state"
    assert settings.admin_token_path == tmp_path / "state" / "admin-token"


def test_the_cli_finds_the_admin_token_where_the_control_plane_keeps_it(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(datadir.ENV, str(tmp_path / "state"))
    settings = ControlSettings()
    assert clientconfig.data_dir() == settings.data_dir
    settings.data_dir.mkdir()
    settings.admin_token_path.write_text("ipk_admin\n")
    assert clientconfig.local_admin_token() == "ipk_admin"
