"""A throwaway PostgreSQL server for tests.

`running_postgres()` initdb's a fresh cluster in a temporary directory, starts it on
127.0.0.1 with a free port (its unix socket in the same directory), and stops and removes
it all on exit. PostgreSQL refuses to run as root, so as root every server command runs as
the `postgres` OS user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

OS_USER = "postgres"
SUPERUSER = "postgres"
START_TIMEOUT_S = 60
START_ATTEMPTS = 3
FAST_UNSAFE_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class PostgresUnavailable(RuntimeError):
    """The server binaries are not installed, or the server would not start."""


def find_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl: Debian's layout first, then pg_config."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    found = Path(out.stdout.strip())
    return found if (found / "initdb").exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One running cluster; `database_url()` creates databases in it."""

    def __init__(self, *, bin_dir: Path, root: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.port = port
        self.data_dir = root / "data"
        self.log_file = root / "server.log"
        self._admin_engine: sa.Engine | None = None

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def initdb(self) -> None:
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        settings = " ".join(f"-c {setting}" for setting in FAST_UNSAFE_SETTINGS)
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} {settings}"
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
            "-t", str(START_TIMEOUT_S), "-o", options, "start",
        )  # fmt: skip

    def stop(self) -> None:
        if self._admin_engine is not None:
            self._admin_engine.dispose()
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        # PostgreSQL 15 copies the template through the WAL by default: 6x slower here.
        strategy = " STRATEGY FILE_COPY" if self._version() >= 150000 else ""
        self._admin(f'CREATE DATABASE "{name}"{strategy}')
        return self.url(name)

    def empty_database(self, name: str) -> None:
        """Drop everything in a database: faster than creating a new one (no checkpoint)."""
        engine = sa.create_engine(self.url(name))
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            engine.dispose()

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _version(self) -> int:
        with self._engine().connect() as conn:
            return int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())

    def _admin(self, statement: str) -> None:
        with self._engine().connect() as conn:
            conn.exec_driver_sql(statement)

    def _engine(self) -> sa.Engine:
        if self._admin_engine is None:
            url = self.url("postgres")
            self._admin_engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        return self._admin_engine

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", OS_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"{program} failed ({done.returncode}): {done.stderr.strip()}\n{self.log_tail()}"
            )


def _make_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="inferplane-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user=OS_USER)
    return root


def _start(bin_dir: Path, root: Path) -> PostgresServer:
    """Start on a free port, trying another one if someone took it in between."""
    for attempt in range(START_ATTEMPTS):
        server = PostgresServer(bin_dir=bin_dir, root=root, port=free_port())
        if attempt == 0:
            server.initdb()
        try:
            server.start()
            return server
        except PostgresUnavailable:
            if attempt == START_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@contextmanager
def running_postgres(bin_dir: Path | None = None) -> Iterator[PostgresServer]:
    """A fresh PostgreSQL server for the duration of the block; removed afterwards."""
    bin_dir = bin_dir or find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: run `make test`,"
            " which installs them, or set INFERPLANE_SKIP_POSTGRES=1 to skip these tests"
        )
    root = _make_root()
    try:
        server = _start(bin_dir, root)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
