"""Keeping the routing table current: watches of the control plane, and a copy on disk.

One thread per kind follows the control plane (`informer.follow`: resumes, relists after a
compaction, retries forever while the control plane is down) and hands each event to the
event loop, which applies it and swaps in a new snapshot. The objects are written to
`routing-table.json` in the state directory a moment after they change, so that a gateway
restarted while the control plane is down starts from the last table it knew (static
stability). Nothing here runs on the request path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from inferplane import client as api_client
from inferplane import informer, logs
from inferplane.backoff import Backoff
from inferplane.gateway.table import KINDS, NsName, Object, Objects, Table, build

log = logging.getLogger("inferplane.gateway.sync")

STATE_FILE = "routing-table.json"
SAVE_DELAY = 0.5
"""Seconds to gather changes before writing the table to disk."""
RETRY = Backoff(base=1.0, cap=15.0)
SECRET_RETRY_SECONDS = 2.0
"""Delay before asking again for values that could not be read."""


class TableSync:
    """Owns the objects, publishes snapshots through `on_table`, persists them."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_table: Callable[[Table], None],
        state_dir: Path | None,
    ) -> None:
        self._loop = loop
        self._on_table = on_table
        self._path = state_dir / STATE_FILE if state_dir else None
        self.objects = Objects()
        self._rebuild_pending = False
        self._save_pending = False
        self._stop = threading.Event()
        self._make_client: Callable[[], api_client.Client] | None = None
        self._fetching = False
        self.last_event = 0.0
        """time.time() of the last event from the control plane."""

    def restore(self) -> bool:
        """Load the table saved by an earlier run, if any; True when one was loaded."""
        if self._path is None or not self._path.exists():
            return False
        try:
            data = orjson.loads(self._path.read_bytes())
            self.objects.load(data["objects"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            logs.event(
                log,
                "saved routing table unreadable",
                level=logging.WARNING,
                path=str(self._path),
                error=str(error),
            )
            return False
        counts = {k.lower() + "s": len(v) for k, v in self.objects.by_kind.items()}
        logs.event(log, "routing table restored", path=str(self._path), **counts)
        self._on_table(build(self.objects))
        return True

    def load_static(self, objects: list[Object]) -> None:
        """Serve a fixed set of objects (`--config`), with no control plane."""
        for kind in KINDS:
            items = [o for o in objects if o.get("kind") == kind]
            self.objects.apply(kind, "RESYNC", {"items": items})
        for (ns, name), secret in self.objects.by_kind["Secret"].items():
            # A static config has no control plane to reveal values: they are in the file.
            data = (secret.get("spec") or {}).get("data") or {}
            version = str(secret["metadata"].get("resourceVersion", ""))
            self.objects.values[(ns, name)] = (version, {str(k): str(v) for k, v in data.items()})
        self._on_table(build(self.objects))

    def follow(self, make_client: Callable[[], api_client.Client]) -> None:
        """Start one watch thread per kind."""
        self._make_client = make_client
        for kind in KINDS:
            thread = threading.Thread(
                target=self._watch, args=(kind, make_client), name=f"watch-{kind}", daemon=True
            )
            thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, kind: str, make_client: Callable[[], api_client.Client]) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with make_client() as client:
                    for event in informer.follow(client, kind):
                        failures = 0
                        self._loop.call_soon_threadsafe(self.apply, kind, event.type, event.object)
                        if self._stop.is_set():
                            return
            except api_client.ClientError as error:
                failures += 1
                logs.event(log, "watch failed", level=logging.WARNING, kind=kind, error=str(error))
            except RuntimeError:
                return  # the event loop closed under us: shutting down
            self._stop.wait(RETRY.delay(failures))

    def apply(self, kind: str, event_type: str, obj: Object) -> None:
        """On the loop: apply one event; rebuild at most once per loop turn."""
        self.last_event = time.time()
        if not self.objects.apply(kind, event_type, obj):
            return
        if kind in ("Endpoint", "Secret"):
            self.objects.forget_unreferenced()
            self._fetch_secrets()
        if not self._rebuild_pending:
            self._rebuild_pending = True
            self._loop.call_soon(self._rebuild)
        if self._path is not None and not self._save_pending:
            self._save_pending = True
            self._loop.call_later(SAVE_DELAY, self._save)

    def _fetch_secrets(self) -> None:
        """Read the values of the Secrets that Endpoints reference (their API keys, and the
        engine tokens of replicas), off the loop; one fetch at a time, another pass after it
        for what changed meanwhile, and one a moment later for what could not be read."""
        wanted = self.objects.wanted_secrets()
        if self._fetching or not wanted or self._make_client is None:
            return
        self._fetching = True
        make_client = self._make_client

        def fetch() -> dict[NsName, tuple[str, dict[str, str]]]:
            got: dict[NsName, tuple[str, dict[str, str]]] = {}
            with make_client() as client:
                for (ns, name), version in wanted.items():
                    try:
                        body = client.reveal(name, namespace=ns)
                    except api_client.ClientError as error:
                        logs.event(
                            log,
                            "secret not received",
                            level=logging.WARNING,
                            secret=f"{ns}/{name}",
                            error=str(error),
                        )
                        continue
                    got[(ns, name)] = (version, dict(body.get("data") or {}))
            return got

        def done(future: asyncio.Future[dict[NsName, tuple[str, dict[str, str]]]]) -> None:
            self._fetching = False
            got = {}
            if not future.cancelled() and future.exception() is None:
                got = future.result()
                self.objects.values.update(got)
                self.objects.forget_unreferenced()  # an Endpoint may have gone meanwhile
                self._rebuild()
            if self.objects.wanted_secrets().keys() - wanted.keys():
                self._fetch_secrets()
            elif wanted.keys() - got.keys() and not self._stop.is_set():
                self._loop.call_later(SECRET_RETRY_SECONDS, self._fetch_secrets)

        self._loop.run_in_executor(None, fetch).add_done_callback(done)

    def _rebuild(self) -> None:
        self._rebuild_pending = False
        self._on_table(build(self.objects))

    def _save(self) -> None:
        self._save_pending = False
        assert self._path is not None
        data = orjson.dumps({"savedAt": time.time(), "objects": self.objects.to_json()})
        self._loop.run_in_executor(None, write_atomically, self._path, data)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, never leaving a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as error:
        logs.event(
            log, "routing table not saved", level=logging.WARNING, path=str(path), error=str(error)
        )
