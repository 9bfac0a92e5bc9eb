"""The runtime's view of the cluster: list+watch per kind, in background threads, into a cache.

Each `Informer` lists its kind (namespace, label selector), replaces that kind in the `Store`
with the list, then watches from the list's resourceVersion, applying each event and resuming
after the last version seen when the server ends the watch. A 410 Gone (the version is older
than the server keeps) starts again with a fresh list, as client-go's reflector does; other
failures retry the list with backoff, and meanwhile the cache keeps what it last saw (engines
keep running; the agent keeps reporting their last state). A kind whose API is not installed
(the LeaderWorkerSet CRD) counts as listed and empty, and is asked for again now and then.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from inferplane import logs
from inferplane.agent.runtime.kubernetes import api
from inferplane.backoff import Backoff

log = logging.getLogger(__name__)

WATCH_SECONDS = 240.0
"""How long one watch request lasts before it is renewed from the last version."""
RETRY = Backoff(base=0.5, cap=30.0)
ABSENT_RETRY_SECONDS = 30.0


def _key(obj: api.Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


class Store:
    """Objects by kind and namespace/name, and what each kind's watch has reached; safe from
    any thread."""

    def __init__(self) -> None:
        self._objects: dict[str, dict[str, api.Obj]] = {}
        self._versions: dict[str, str] = {}
        self._listed: dict[str, bool] = {}
        self._absent: dict[str, bool] = {}
        self._lock = threading.Lock()
        self.listed = threading.Condition(self._lock)

    def replace(self, kind: str, items: list[api.Obj], version: str) -> None:
        with self._lock:
            self._objects[kind] = {_key(item): item for item in items}
            self._versions[kind] = version
            self._listed[kind] = True
            self._absent[kind] = False
            self.listed.notify_all()

    def absent(self, kind: str) -> None:
        """The kind's API is not installed: listed, and empty."""
        with self._lock:
            self._objects[kind] = {}
            self._listed[kind] = True
            self._absent[kind] = True
            self.listed.notify_all()

    def apply(self, kind: str, event: api.Event) -> None:
        version = api.resource_version(event.object)
        with self._lock:
            objects = self._objects.setdefault(kind, {})
            if event.type == "DELETED":
                objects.pop(_key(event.object), None)
            elif event.type in ("ADDED", "MODIFIED"):
                objects[_key(event.object)] = event.object
            if version:
                self._versions[kind] = version

    def items(self, kind: str) -> list[api.Obj]:
        with self._lock:
            return list((self._objects.get(kind) or {}).values())

    def get(self, kind: str, namespace: str, name: str) -> api.Obj | None:
        with self._lock:
            return (self._objects.get(kind) or {}).get(f"{namespace}/{name}")

    def version(self, kind: str) -> str:
        with self._lock:
            return self._versions.get(kind, "")

    def is_absent(self, kind: str) -> bool:
        with self._lock:
            return self._absent.get(kind, False)

    def wait_listed(self, kinds: list[str], timeout: float) -> bool:
        """Wait until every kind was listed once; False on timeout."""
        with self._lock:
            return self.listed.wait_for(lambda: all(self._listed.get(k) for k in kinds), timeout)


@dataclass(frozen=True)
class Watched:
    """One kind to keep in the store."""

    kind: api.Kind
    namespace: str | None
    selector: str = ""


class Informer:
    """Keeps one kind of the store up to date; `run` until `stop` is set."""

    def __init__(
        self,
        client: api.Api,
        store: Store,
        watched: Watched,
        *,
        watch_seconds: float = WATCH_SECONDS,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self.watched = watched
        self._watch_seconds = watch_seconds
        self._wait = wait
        self.relists = 0
        """How many times it listed (1 + each resumption after 410 or a failure)."""

    def run(self, stop: threading.Event) -> None:
        wait = self._wait or stop.wait
        failures = 0
        while not stop.is_set():
            try:
                self._list_and_watch(stop)
                failures = 0
            except api.Gone:
                logs.event(log, "watch expired, listing again", kind=self.watched.kind.plural)
            except api.NotFound:
                self._store.absent(self.watched.kind.kind)
                wait(ABSENT_RETRY_SECONDS)
            except api.ApiError as exc:
                if stop.is_set():
                    return
                failures += 1
                logs.event(log, "watch failed", level=logging.WARNING,
                           kind=self.watched.kind.plural, error=exc)  # fmt: skip
                wait(RETRY.delay(failures))

    def _list_and_watch(self, stop: threading.Event) -> None:
        watched = self.watched
        kind = watched.kind.kind
        items, version = self._client.list(
            watched.kind, watched.namespace, selector=watched.selector
        )
        self.relists += 1
        self._store.replace(kind, items, version)
        while not stop.is_set():
            for event in self._client.watch(
                watched.kind,
                watched.namespace,
                selector=watched.selector,
                resource_version=version,
                timeout=self._watch_seconds,
            ):
                self._store.apply(kind, event)
                version = api.resource_version(event.object) or version
                if stop.is_set():
                    return


class Watcher:
    """The informers of one runtime, each on its own daemon thread."""

    def __init__(
        self, client: api.Api, store: Store, watched: list[Watched], *,
        watch_seconds: float = WATCH_SECONDS,
    ) -> None:  # fmt: skip
        self.informers = [Informer(client, store, w, watch_seconds=watch_seconds) for w in watched]
        self._client = client
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return bool(self._threads)

    def start(self) -> None:
        if self._threads:
            return
        for informer in self.informers:
            name = f"kube-watch-{informer.watched.kind.plural}"
            thread = threading.Thread(
                target=informer.run, args=(self._stop,), name=name, daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._client.shutdown_streams()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
