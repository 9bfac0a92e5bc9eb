"""The kubernetes runtime: each replica as a Deployment (a gang: a LeaderWorkerSet) and a
Service in the Cluster's namespace, its status read from a watch.

`start` creates the objects `render` makes (the Secret with the engine token, the DRA claim,
the Service, then the workload); an API server that cannot be reached or answers 5xx is
tried again from `sync` with backoff, while the replica shows Starting and why. The kubelet
probes and restarts the engine; background informers (`watch`) keep a cache of the
runtime's Deployments, LeaderWorkerSets and Pods (label inferplane.dev/managed-by) and of the
Nodes, and `status` and `sync` only read that cache. `stop` deletes the workload with
propagationPolicy Foreground and the agent's grace (its pods too, so that each engine gets
that grace to drain); the replica reads Draining until the watch has seen the workload and
its pods go, whatever finalizers hold them. `adopt` takes over the labelled objects an
earlier agent left, and removes the Services, Secrets and claims no workload owns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from inferplane import logs
from inferplane.agent.runtime import base
from inferplane.agent.runtime.kubernetes import api, discovery, launches, names, render
from inferplane.agent.runtime.kubernetes import status as podstatus
from inferplane.agent.runtime.kubernetes import watch as watching
from inferplane.api import fleet
from inferplane.backoff import Backoff

log = logging.getLogger(__name__)

KIND = "kubernetes"
SYNC_TIMEOUT = 30.0
"""How long `adopt` waits for the first list of every watched kind."""
LOG_WINDOW_BYTES = 2 * 2**20
"""How much of a container's log `read_log` sees: its first 2 MiB."""
CREATE_RETRY = Backoff(base=1.0, cap=60.0)
_TRANSIENT = frozenset({0, 429, 500, 502, 503, 504})
_SIDE_KINDS = (api.SERVICES, api.SECRETS, api.RESOURCE_CLAIMS, api.RESOURCE_CLAIM_TEMPLATES)


@dataclass
class _Entry:
    """One replica this runtime runs or stops."""

    name: str
    object_name: str
    gang: bool
    size: int
    port: int
    fingerprint: str
    launch: base.Launch | None = None
    """The launch it was started with (with its token); None for one adopted."""
    pending: bool = False
    """Its objects are still to be created (the API server was unreachable)."""
    failures: int = 0
    next_try: float = 0.0
    message: str = ""
    stopping: bool = False
    grace: float = 0.0
    delete_pending: bool = False
    deleted_version: str = ""
    """The resourceVersion the workload's deletion returned: gone once the watch is past it."""
    seen: bool = False
    """The watch has shown its workload."""

    @property
    def workload_kind(self) -> api.Kind:
        return api.LEADER_WORKER_SETS if self.gang else api.DEPLOYMENTS

    @property
    def service(self) -> str:
        return names.leader_service(self.object_name) if self.gang else self.object_name


class KubernetesRuntime:
    """Runs engines as pods; see the module docstring."""

    def __init__(
        self,
        client: api.Api,
        settings: fleet.KubernetesRuntimeSpec,
        *,
        watch_seconds: float = watching.WATCH_SECONDS,
        sync_timeout: float = SYNC_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._client = client
        self._sync_timeout = sync_timeout
        self._clock = clock
        self._store = watching.Store()
        namespace = settings.namespace
        self._watcher = watching.Watcher(
            client,
            self._store,
            [
                watching.Watched(api.DEPLOYMENTS, namespace, names.SELECTOR),
                watching.Watched(api.LEADER_WORKER_SETS, namespace, names.SELECTOR),
                watching.Watched(api.PODS, namespace, names.SELECTOR),
                watching.Watched(api.NODES, None),
            ],
            watch_seconds=watch_seconds,
        )
        self._entries: dict[str, _Entry] = {}
        self._version: str | None = None

    @property
    def kind(self) -> str:
        return KIND

    def version(self) -> str | None:
        """The Kubernetes server's version, e.g. `Kubernetes v1.34.1`; None when the API
        server cannot be reached."""
        if self._version is None:
            try:
                self._version = f"Kubernetes {self._client.server_version()}".strip()
            except api.ApiError as exc:
                logs.event(log, "no server version", level=logging.WARNING, error=exc)
                return None
        return self._version

    @property
    def informers(self) -> list[watching.Informer]:
        return self._watcher.informers

    # -- the Runtime interface --------------------------------------------------------------

    def launch_for(self, replica: base.Replica) -> base.Launch:
        self._watcher.start()
        shapes = discovery.shapes(self._store.items(api.NODES.kind))
        return launches.launch_for(replica, shapes=shapes)

    def adopt(self) -> list[str]:
        self._watcher.start()
        kinds = [api.DEPLOYMENTS.kind, api.LEADER_WORKER_SETS.kind, api.PODS.kind,
                 api.NODES.kind]  # fmt: skip
        listed = self._store.wait_listed(kinds, self._sync_timeout)
        if not listed:
            logs.event(log, "no list of the cluster's objects yet: adopting later",
                       level=logging.WARNING, namespace=self.settings.namespace)  # fmt: skip
            return []
        for workload in self._workloads():
            entry = _entry_of(workload)
            if entry is not None and entry.name not in self._entries:
                entry.seen = True
                self._entries[entry.name] = entry
                logs.event(log, "engine adopted", replica=entry.name, object=entry.object_name)
        self._sweep()
        return sorted(self._entries)

    def start(self, launch: base.Launch) -> None:
        self._watcher.start()
        entry = self._entries.get(launch.name) or self._cached_entry(launch.name)
        if entry is not None:
            self._restart_or_keep(entry, launch)
            return
        if launch.needs_token and launch.token is None:
            raise base.RuntimeFailure(f"{launch.name} needs its engine token to start")
        render.render(launch, self.settings)  # refuse a launch it cannot render, at once
        entry = _Entry(
            name=launch.name,
            object_name=names.object_name(launch.name),
            gang=launch.nodes > 1,
            size=launch.nodes,
            port=render.port_of(launch),
            fingerprint=launch.fingerprint(),
            launch=launch,
        )
        self._entries[launch.name] = entry
        self._create(entry)

    def stop(self, name: str, *, grace: float) -> None:
        entry = self._entries.get(name) or self._cached_entry(name)
        if entry is None or entry.stopping:
            return
        self._entries[name] = entry
        entry.stopping, entry.pending, entry.grace = True, False, grace
        logs.event(log, "engine stopping", replica=name, grace=grace)
        self._delete(entry)

    def status(self, name: str) -> base.EngineStatus | None:
        entry = self._entries.get(name) or self._cached_entry(name)
        if entry is None:
            return None
        observed = self._observed(entry)
        stopping = entry.stopping or _deleting(observed.workload)
        if stopping and self._gone(entry, observed):
            return None
        phase = podstatus.phase(observed, stopping=stopping)
        message = entry.message if entry.pending else podstatus.message(observed, phase)
        return base.EngineStatus(
            name=name,
            phase=phase,
            url=f"http://{entry.service}.{self.settings.namespace}.svc:{entry.port}",
            pid=None,
            restarts=podstatus.total_restarts(observed.pods),
            started_at=podstatus.started_at(observed.pods),
            last_probe_at=None,
            message=message,
            fingerprint=entry.fingerprint,
        )

    def names(self) -> list[str]:
        found = set(self._entries)
        for workload in self._workloads():
            entry = _entry_of(workload)
            if entry is not None:
                found.add(entry.name)
        return sorted(name for name in found if self.status(name) is not None)

    def sync(self) -> None:
        now = self._clock()
        for name, entry in list(self._entries.items()):
            observed = self._observed(entry)
            if observed.workload is not None:
                entry.seen = True
            if entry.stopping:
                if entry.delete_pending:
                    self._delete(entry)
                if self._gone(entry, observed):
                    del self._entries[name]
                    logs.event(log, "engine stopped", replica=name)
            elif entry.pending and now >= entry.next_try:
                try:
                    self._create(entry)
                except base.RuntimeFailure as exc:  # refused for good: the agent starts anew
                    logs.event(log, "engine objects refused", level=logging.WARNING,
                               replica=name, error=exc)  # fmt: skip
            elif entry.seen and observed.workload is None and not entry.pending:
                del self._entries[name]  # deleted behind the agent's back: it starts it again
                logs.event(log, "engine's objects are gone", level=logging.WARNING, replica=name)

    def read_log(self, name: str, *, offset: int, limit: int) -> base.LogChunk:
        pod = self._log_pod(name)
        if pod is None:
            raise base.UnknownEngine(f"no pod of {name} in namespace {self.settings.namespace}")
        try:
            data = self._client.log(
                self.settings.namespace, pod, container=render.CONTAINER,
                limit_bytes=LOG_WINDOW_BYTES,
            )  # fmt: skip
        except api.NotFound as exc:
            raise base.UnknownEngine(f"no log of {name}: {exc.message}") from exc
        except api.ApiError:  # e.g. the container has not started yet
            return base.LogChunk(data=b"", offset=offset, size=max(offset, 0))
        start = min(max(offset, 0), len(data))
        chunk = data[start : start + max(limit, 0)]
        return base.LogChunk(data=chunk, offset=start + len(chunk), size=len(data))

    def close(self, *, grace: float, stop_engines: bool) -> None:
        if stop_engines:
            for name in self.names():
                self.stop(name, grace=grace)
            deadline = time.monotonic() + grace + 2.0
            while self._entries and time.monotonic() < deadline:
                self.sync()
                time.sleep(0.1)
        self._watcher.stop()
        self._client.close()

    # -- creating ---------------------------------------------------------------------------

    def _restart_or_keep(self, entry: _Entry, launch: base.Launch) -> None:
        """`start` of a replica the runtime runs: the same launch is kept (an adopted one gets
        its token, a Secret lost is made again); another is refused, as the process runtime
        does: the agent stops the old engine first."""
        if entry.stopping:
            raise base.RuntimeFailure(f"{launch.name} is still stopping; start it once it is gone")
        if entry.fingerprint != launch.fingerprint():
            raise base.RuntimeFailure(
                f"{launch.name} runs another launch; stop it before starting this one"
            )
        self._entries[launch.name] = entry
        if launch.token is None:
            return
        entry.launch = launch
        secret = render.render(launch, self.settings, token=launch.token).secret
        if secret is not None:
            try:
                self._put(secret)
            except api.ApiError as exc:
                logs.event(log, "engine token not stored", level=logging.WARNING,
                           replica=launch.name, error=exc)  # fmt: skip

    def _create(self, entry: _Entry) -> None:
        """Create the entry's objects; transient failures leave it pending (retried by
        `sync`), others remove it and raise RuntimeFailure."""
        launch = entry.launch
        if launch is None:
            return
        manifests = render.render(launch, self.settings, token=launch.token)
        try:
            for manifest in manifests.all():
                self._put(manifest, replace_existing=manifest is manifests.secret)
        except api.ApiError as exc:
            if exc.status in _TRANSIENT:
                entry.failures += 1
                entry.pending = True
                entry.next_try = self._clock() + CREATE_RETRY.delay(entry.failures)
                entry.message = f"cannot create its objects yet: {exc}"
                logs.event(log, "engine objects not created", level=logging.WARNING,
                           replica=entry.name, error=exc)  # fmt: skip
                return
            del self._entries[entry.name]
            try:
                self._remove(entry)
            except api.ApiError as cleanup:
                logs.event(log, "objects left behind", replica=entry.name, error=cleanup)
            raise base.RuntimeFailure(_refusal(entry, manifests, exc)) from exc
        entry.pending, entry.failures, entry.message = False, 0, ""
        logs.event(log, "engine objects created", replica=entry.name, object=entry.object_name)

    def _put(self, manifest: api.Obj, *, replace_existing: bool = True) -> None:
        namespace = self.settings.namespace
        try:
            self._client.create(namespace, manifest)
            return
        except api.Conflict:
            pass
        kind = api.kind_of(manifest)
        existing = self._client.get(kind, namespace, manifest["metadata"]["name"])
        if _deleting(existing):
            raise api.ApiError(503, "Terminating", f"{kind.kind} is still being deleted")
        if kind in (api.DEPLOYMENTS, api.LEADER_WORKER_SETS):
            theirs = _annotations(existing).get(names.FINGERPRINT)
            if theirs != _annotations(manifest).get(names.FINGERPRINT):
                raise api.Conflict(409, "AlreadyExists", f"{kind.kind} runs another launch")
            return
        if replace_existing:
            meta = {**manifest["metadata"], "resourceVersion": api.resource_version(existing)}
            self._client.replace(namespace, {**manifest, "metadata": meta})

    # -- deleting ---------------------------------------------------------------------------

    def _delete(self, entry: _Entry) -> None:
        namespace = self.settings.namespace
        try:
            left = self._client.delete(
                entry.workload_kind, namespace, entry.object_name,
                grace=entry.grace, propagation="Foreground",
            )  # fmt: skip
            entry.deleted_version = api.resource_version(left) if left else ""
            for pod in self._pods(entry):
                pod_name = pod["metadata"]["name"]
                self._client.delete(api.PODS, namespace, pod_name, grace=entry.grace)
            self._remove(entry)
            entry.delete_pending = False
        except api.ApiError as exc:
            entry.delete_pending = True
            logs.event(log, "engine not deleted yet", level=logging.WARNING,
                       replica=entry.name, error=exc)  # fmt: skip

    def _remove(self, entry: _Entry) -> None:
        """Delete the Service, Secret and claim of `entry` (those that exist)."""
        namespace = self.settings.namespace
        self._client.delete(api.SERVICES, namespace, entry.service, propagation="Background")
        self._client.delete(api.SECRETS, namespace, entry.object_name)
        for kind in (api.RESOURCE_CLAIMS, api.RESOURCE_CLAIM_TEMPLATES):
            self._client.delete(kind, namespace, entry.object_name)

    def _sweep(self) -> None:
        """Delete the labelled Services, Secrets and claims that no workload owns (left by an
        agent that stopped between creating them and the workload)."""
        owned = {entry.object_name for entry in self._entries.values()}
        for kind in _SIDE_KINDS:
            try:
                items, _ = self._client.list(kind, self.settings.namespace, selector=names.SELECTOR)
                for item in items:
                    instance = _labels(item).get(names.INSTANCE)
                    if instance and instance not in owned:
                        self._client.delete(kind, self.settings.namespace, item["metadata"]["name"])
                        logs.event(log, "orphan removed", kind=kind.kind, object=instance)
            except api.ApiError as exc:
                if not isinstance(exc, api.NotFound):  # NotFound: that API is not installed
                    logs.event(log, "orphans not swept", kind=kind.kind, error=exc)

    def _gone(self, entry: _Entry, observed: podstatus.Observed) -> bool:
        if entry.pending or entry.delete_pending:
            return False
        if observed.workload is not None or observed.pods:
            return False
        version = self._store.version(entry.workload_kind.kind)
        return _reached(version, entry.deleted_version)

    # -- reading the cache ------------------------------------------------------------------

    def _workloads(self) -> list[api.Obj]:
        return self._store.items(api.DEPLOYMENTS.kind) + self._store.items(
            api.LEADER_WORKER_SETS.kind
        )

    def _cached_entry(self, name: str) -> _Entry | None:
        """The entry of a replica the cache shows but this runtime has not adopted yet."""
        object_name = names.object_name(name)
        for kind in (api.DEPLOYMENTS, api.LEADER_WORKER_SETS):
            found = self._store.get(kind.kind, self.settings.namespace, object_name)
            entry = _entry_of(found) if found is not None else None
            if entry is not None and entry.name == name:
                entry.seen = True
                return entry
        return None

    def _observed(self, entry: _Entry) -> podstatus.Observed:
        workload = self._store.get(
            entry.workload_kind.kind, self.settings.namespace, entry.object_name
        )
        size = entry.size
        if workload is not None and entry.gang:
            template = (workload.get("spec") or {}).get("leaderWorkerTemplate") or {}
            size = int(template.get("size") or size)
        return podstatus.Observed(workload, self._pods(entry), size=size)

    def _pods(self, entry: _Entry) -> list[api.Obj]:
        return [
            pod
            for pod in self._store.items(api.PODS.kind)
            if _labels(pod).get(names.INSTANCE) == entry.object_name
        ]

    def _log_pod(self, name: str) -> str | None:
        object_name = names.object_name(name)
        pods = [
            pod for pod in self._store.items(api.PODS.kind)
            if _labels(pod).get(names.INSTANCE) == object_name
            and _labels(pod).get(render.LWS_WORKER_INDEX, "0") == "0"
        ]  # fmt: skip
        pods.sort(key=lambda pod: (not _deleting(pod), _created(pod)))
        return str(pods[-1]["metadata"]["name"]) if pods else None


def _entry_of(workload: api.Obj) -> _Entry | None:
    """The entry a labelled workload stands for; None when its annotations do not name the
    replica it is named for (not ours, or tampered with)."""
    annotations = _annotations(workload)
    name = annotations.get(names.REPLICA_NAME, "")
    object_name = (workload.get("metadata") or {}).get("name")
    if not name or names.object_name(name) != object_name:
        return None
    gang = workload.get("kind") == api.LEADER_WORKER_SETS.kind
    template = (workload.get("spec") or {}).get("leaderWorkerTemplate") or {}
    try:
        port = int(annotations.get(names.PORT) or launches.CONTAINER_PORT)
    except ValueError:
        port = launches.CONTAINER_PORT
    return _Entry(
        name=name,
        object_name=object_name,
        gang=gang,
        size=int(template.get("size") or 1) if gang else 1,
        port=port,
        fingerprint=annotations.get(names.FINGERPRINT, ""),
        stopping=_deleting(workload),
    )


def _refusal(entry: _Entry, manifests: render.Manifests, exc: api.ApiError) -> str:
    if isinstance(exc, api.NotFound) and entry.gang:
        return (
            f"the cluster has no LeaderWorkerSet API ({render.LWS_API_VERSION}), which a"
            f" replica of {entry.size} nodes runs as: install LeaderWorkerSet (LWS) there"
        )
    kinds = ", ".join(m["kind"] for m in manifests.all())
    return f"the Kubernetes API refused the objects of {entry.name} ({kinds}): {exc}"


def _reached(version: str, target: str) -> bool:
    """The watch has seen `target`: resourceVersions are opaque, but etcd's are integers."""
    if not target:
        return True
    if version.isdigit() and target.isdigit():
        return int(version) >= int(target)
    return True


def _deleting(obj: api.Obj | None) -> bool:
    return bool(obj and (obj.get("metadata") or {}).get("deletionTimestamp"))


def _created(obj: api.Obj) -> str:
    return str((obj.get("metadata") or {}).get("creationTimestamp") or "")


def _labels(obj: api.Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _annotations(obj: api.Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})
