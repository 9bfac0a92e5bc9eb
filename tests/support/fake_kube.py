"""A FAKE Kubernetes API server, in-process, for tests. It is not Kubernetes.

It speaks the REST paths and JSON of the real API server for the kinds the kubernetes runtime
uses (Deployments, LeaderWorkerSets, Pods with their status and log subresources, Services,
Secrets, ResourceClaims and their templates, Nodes; namespaces are implicit), so that the
official `kubernetes` client drives it unchanged through a generated kubeconfig:

- create (POST), get, list (labelSelector, equality- and set-based), replace (PUT, with
  resourceVersion conflicts), JSON merge patch, delete with DeleteOptions (gracePeriodSeconds,
  propagationPolicy), and the status subresource;
- `?watch=true`: a chunked stream of JSON events after a resourceVersion, as the API server
  sends them (ADDED, MODIFIED, DELETED; an object leaving a selector is DELETED for that
  watch), ended after timeoutSeconds; a resourceVersion older than the history it keeps is
  answered with an ERROR event carrying a 410 Expired Status (`compact`, `expire_watches`);
- finalizers and deletionTimestamp: an object with finalizers is only marked deleted, and
  goes once the last one is removed; propagationPolicy Foreground adds the foregroundDeletion
  finalizer, and a garbage collector deletes an owner's dependents (by ownerReferences)
  before it lets the owner go, Background deletes them after;
- Bearer token authentication, and 422 for a built-in object that fails Kubernetes' schema
  (kubernetes-validate).

What a real cluster's controllers, scheduler and kubelet do, the tests do with helpers:
`schedule` makes a workload's pods (as the ReplicaSet or LeaderWorkerSet controller and the
scheduler would), `set_ready` marks a pod Running and Ready, `crash` puts its container in
CrashLoopBackOff with a restart count and a termination message, `add_log` writes its log.
A running pod that is deleted stays Terminating (deletionTimestamp, deletionGracePeriodSeconds:
the shortest grace asked for) until the test calls `terminate`, as the kubelet would once the
container stopped.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import yaml

Obj = dict[str, Any]
KUBERNETES = "1.37"
VERSION = "v1.37.0-fake"
FOREGROUND = "foregroundDeletion"


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    builtin: bool = True
    """Checked against Kubernetes' schema on every write."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RESOURCES = [
    Resource("apps", "v1", "deployments", "Deployment"),
    Resource("leaderworkerset.x-k8s.io", "v1", "leaderworkersets", "LeaderWorkerSet",
             builtin=False),
    Resource("", "v1", "pods", "Pod"),
    Resource("", "v1", "services", "Service"),
    Resource("", "v1", "secrets", "Secret"),
    Resource("resource.k8s.io", "v1", "resourceclaims", "ResourceClaim"),
    Resource("resource.k8s.io", "v1", "resourceclaimtemplates", "ResourceClaimTemplate"),
    Resource("", "v1", "nodes", "Node", namespaced=False),
]  # fmt: skip
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND = {r.kind: r for r in RESOURCES}


class Failure(Exception):
    """An API error, answered as a Status object."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> Obj:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}  # fmt: skip


@dataclass(frozen=True)
class _Event:
    version: int
    resource: Resource
    type: str
    old: Obj | None
    new: Obj


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Obj | None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.setdefault("metadata", {})
    return meta


# --- label selectors -----------------------------------------------------------------------


def matches(selector: str, labels: dict[str, str]) -> bool:
    """Kubernetes label selector syntax: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a)."""
    return all(_term(term.strip(), labels) for term in _terms(selector) if term.strip())


def _terms(selector: str) -> Iterator[str]:
    depth, start = 0, 0
    for i, char in enumerate(selector):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            yield selector[start:i]
            start = i + 1
    yield selector[start:]


def _term(term: str, labels: dict[str, str]) -> bool:
    for word, negate in ((" notin ", True), (" in ", False)):
        if word in term:
            key, _, rest = term.partition(word)
            choices = {c.strip() for c in rest.strip().strip("()").split(",")}
            found = labels.get(key.strip())
            return (found not in choices) if negate else (found in choices)
    if "!=" in term:
        key, _, value = term.partition("!=")
        return labels.get(key.strip()) != value.strip()
    if "=" in term:
        key, _, value = term.replace("==", "=").partition("=")
        return labels.get(key.strip()) == value.strip()
    if term.startswith("!"):
        return term[1:].strip() not in labels
    return term in labels


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- the store -----------------------------------------------------------------------------


class FakeKube:
    """The fake API server: its store, its HTTP server on a loopback port, its helpers."""

    def __init__(self, *, token: str = "fake-token", history: int = 10_000) -> None:
        self.token = token
        self._history = history
        self._cond = threading.Condition()
        self._objects: dict[tuple[str, str, str], Obj] = {}
        self._version = 0
        self._events: list[_Event] = []
        self._compacted = 0
        """Versions up to this one are no longer kept: watches from them get 410."""
        self._epoch = 0
        self._closing = False
        self.requests: list[Request] = []
        self.logs: dict[tuple[str, str], bytes] = {}
        self.failing: list[tuple[str, int]] = []
        """(method, status) to answer the next requests of that method with, once each."""
        self.missing: set[str] = set()
        """Kinds whose API is 'not installed': every request for them is a 404."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeKube:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kubeconfig(self, path: Path, *, namespace: str = "inferplane") -> Path:
        """A kubeconfig naming this server and its token."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake",
                                                      "namespace": namespace}}],
            "current-context": "fake",
        }  # fmt: skip
        path.write_text(yaml.safe_dump(config))
        return path

    # -- objects ----------------------------------------------------------------------------

    def create(self, resource: Resource, namespace: str, body: Obj) -> Obj:
        obj = copy.deepcopy(body)
        meta = _meta(obj)
        name = meta.get("name")
        if not name:
            raise Failure(422, "Invalid", f"{resource.kind}: metadata.name: Required value")
        if resource.namespaced and meta.get("namespace") not in (None, namespace):
            raise Failure(400, "BadRequest", "the namespace of the object does not match")
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        _string_data(obj)
        if resource.namespaced:
            meta["namespace"] = namespace
        self._check(resource, obj)
        with self._cond:
            key = self._key(resource, namespace, name)
            if key in self._objects:
                raise Failure(409, "AlreadyExists",
                              f'{resource.plural} "{name}" already exists')  # fmt: skip
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
            for field in ("deletionTimestamp", "resourceVersion"):
                meta.pop(field, None)
            self._write(resource, key, None, obj, "ADDED")
            return copy.deepcopy(obj)

    def get(self, resource: Resource, namespace: str, name: str) -> Obj:
        with self._cond:
            return copy.deepcopy(self._existing(resource, namespace, name))

    def list(self, resource: Resource, namespace: str | None, selector: str = "") -> Obj:
        with self._cond:
            items = [
                copy.deepcopy(obj)
                for (plural, ns, _), obj in sorted(self._objects.items())
                if plural == resource.plural
                and (namespace is None or ns == namespace)
                and matches(selector, _meta(obj).get("labels") or {})
            ]
            return {
                "kind": f"{resource.kind}List",
                "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": str(self._version)},
                "items": items,
            }

    def replace(self, resource: Resource, namespace: str, name: str, body: Obj,
                *, status: bool = False) -> Obj:  # fmt: skip
        with self._cond:
            old = self._existing(resource, namespace, name)
            wanted = _meta(body).get("resourceVersion")
            if wanted and wanted != _meta(old)["resourceVersion"]:
                raise Failure(409, "Conflict", f'Operation cannot be fulfilled on {resource.plural}'
                              f' "{name}": the object has been modified')  # fmt: skip
            return self._update(resource, namespace, name, copy.deepcopy(body), status=status)

    def patch(self, resource: Resource, namespace: str, name: str, patch: Obj,
              *, status: bool = False) -> Obj:  # fmt: skip
        with self._cond:
            old = self._existing(resource, namespace, name)
            return self._update(resource, namespace, name, merge_patch(old, patch), status=status)

    def delete(self, resource: Resource, namespace: str, name: str, options: Obj) -> Obj:
        with self._cond:
            self._existing(resource, namespace, name)
            key = self._key(resource, namespace, name)
            left = self._delete(resource, key, options)
            self._collect_garbage()
            return copy.deepcopy(self._objects.get(key, left))

    # -- what controllers, the scheduler and the kubelet would do ----------------------------

    def schedule(self, namespace: str, name: str) -> list[str]:
        """Make the pods of workload `name` (a Deployment's one, a LeaderWorkerSet's group),
        Pending on a node; returns their names."""
        for kind in ("Deployment", "LeaderWorkerSet"):
            try:
                workload = self.get(BY_KIND[kind], namespace, name)
            except Failure:
                continue
            if kind == "Deployment":
                template = workload["spec"]["template"]
                suffix = hashlib.sha256(_meta(workload)["uid"].encode()).hexdigest()[:5]
                return [self._pod(workload, template, f"{name}-{suffix}", {})]
            group = workload["spec"]["leaderWorkerTemplate"]
            pods = []
            for index in range(int(group.get("size") or 1)):
                template = group["leaderTemplate" if index == 0 else "workerTemplate"]
                pod_name = f"{name}-0" if index == 0 else f"{name}-0-{index}"
                labels = {"leaderworkerset.sigs.k8s.io/name": name,
                          "leaderworkerset.sigs.k8s.io/group-index": "0",
                          "leaderworkerset.sigs.k8s.io/worker-index": str(index)}  # fmt: skip
                pods.append(self._pod(workload, template, pod_name, labels))
            return pods
        raise Failure(404, "NotFound", f"no workload {namespace}/{name}")

    def set_ready(self, namespace: str, pod: str, *, ready: bool = True) -> None:
        """The container runs, and its readiness probe passes (or fails)."""
        old = self.get(BY_KIND["Pod"], namespace, pod)
        restarts = _restarts(old)
        status = {
            "phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True"},
                           {"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{
                "name": _container(old), "ready": ready, "restartCount": restarts,
                "image": "x", "imageID": "x",
                "state": {"running": {"startedAt": _now()}},
            }],
        }  # fmt: skip
        self.patch(BY_KIND["Pod"], namespace, pod, {"status": status}, status=True)

    def crash(self, namespace: str, pod: str, *, restarts: int, message: str,
              exit_code: int = 1) -> None:  # fmt: skip
        """The container exited `restarts` times, and the kubelet backs off restarting it."""
        old = self.get(BY_KIND["Pod"], namespace, pod)
        container = _container(old)
        status = {
            "phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True"},
                           {"type": "Ready", "status": "False"}],
            "containerStatuses": [{
                "name": container, "ready": False, "restartCount": restarts,
                "image": "x", "imageID": "x",
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message":
                                      f"back-off 40s restarting failed container={container}"
                                      f" pod={pod}"}},
                "lastState": {"terminated": {"exitCode": exit_code, "reason": "Error",
                                             "message": message}},
            }],
        }  # fmt: skip
        self.patch(BY_KIND["Pod"], namespace, pod, {"status": status}, status=True)

    def terminate(self, namespace: str, pod: str) -> None:
        """The kubelet has stopped a terminating pod's containers: the pod goes."""
        with self._cond:
            key = self._key(BY_KIND["Pod"], namespace, pod)
            if _meta(self._objects[key]).get("deletionTimestamp"):
                self._remove(BY_KIND["Pod"], key)
                self._collect_garbage()

    def add_log(self, namespace: str, pod: str, text: str) -> None:
        with self._cond:
            self.logs[(namespace, pod)] = self.logs.get((namespace, pod), b"") + text.encode()

    def pods(self, namespace: str, selector: str = "") -> list[Obj]:
        return list(self.list(BY_KIND["Pod"], namespace, selector)["items"])

    def compact(self) -> None:
        """Forget the event history, as etcd compaction does: a watch or list from an older
        resourceVersion gets 410 Gone."""
        with self._cond:
            self._events.clear()
            self._compacted = self._version

    def expire_watches(self) -> None:
        """Compact, and end every open watch with a 410 Gone event (an API server restart
        after compaction)."""
        with self._cond:
            self.compact()
            self._epoch += 1
            self._cond.notify_all()

    @property
    def version(self) -> int:
        with self._cond:
            return self._version

    # -- internals (callers hold the lock) ---------------------------------------------------

    def _key(self, resource: Resource, namespace: str | None, name: str) -> tuple[str, str, str]:
        return (resource.plural, namespace if resource.namespaced else "", name)

    def _existing(self, resource: Resource, namespace: str | None, name: str) -> Obj:
        obj = self._objects.get(self._key(resource, namespace, name))
        if obj is None:
            raise Failure(404, "NotFound", f'{resource.plural} "{name}" not found')
        return obj

    def _check(self, resource: Resource, obj: Obj) -> None:
        if not resource.builtin:
            return
        try:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            message = f"{resource.kind} is invalid: {path}: {exc.message}"
            raise Failure(422, "Invalid", message) from exc

    def _update(self, resource: Resource, namespace: str, name: str, new: Obj, *,
                status: bool) -> Obj:  # fmt: skip
        key = self._key(resource, namespace, name)
        old = self._objects[key]
        merged = copy.deepcopy(old)
        if status:
            merged["status"] = new.get("status") or {}
        else:
            merged = {k: v for k, v in new.items() if k not in ("status", "metadata")}
            merged.update(metadata=copy.deepcopy(_meta(old)), status=old.get("status"))
            if merged["status"] is None:
                del merged["status"]
            _string_data(merged)
            meta = _meta(merged)
            for field in ("labels", "annotations", "finalizers", "ownerReferences"):
                value = _meta(new).get(field)
                if value is None:
                    meta.pop(field, None)
                else:
                    meta[field] = value
            if merged.get("spec") != old.get("spec"):
                meta["generation"] = int(meta.get("generation") or 1) + 1
        self._check(resource, merged)
        if _meta(merged).get("deletionTimestamp") and not _held(merged):
            self._remove(resource, key)
            self._collect_garbage()
            return merged
        self._write(resource, key, old, merged, "MODIFIED")
        self._collect_garbage()
        return copy.deepcopy(merged)

    def _write(self, resource: Resource, key: tuple[str, str, str], old: Obj | None,
               new: Obj, kind: str) -> None:  # fmt: skip
        self._version += 1
        _meta(new)["resourceVersion"] = str(self._version)
        self._objects[key] = new
        self._record(_Event(self._version, resource, kind, old, copy.deepcopy(new)))

    def _remove(self, resource: Resource, key: tuple[str, str, str]) -> None:
        old = self._objects.pop(key)
        self._version += 1
        gone = copy.deepcopy(old)
        _meta(gone)["resourceVersion"] = str(self._version)
        self._record(_Event(self._version, resource, "DELETED", old, gone))

    def _record(self, event: _Event) -> None:
        self._events.append(event)
        if len(self._events) > self._history:
            dropped = self._events.pop(0)
            self._compacted = dropped.version
        self._cond.notify_all()

    def _delete(self, resource: Resource, key: tuple[str, str, str], options: Obj) -> Obj:
        """Delete, or mark deleted while finalizers (or, for a running pod, the kubelet's
        grace) hold the object; returns the object as deletion left it."""
        obj = copy.deepcopy(self._objects[key])
        meta = _meta(obj)
        grace = _grace(obj, options)
        if meta.get("deletionTimestamp"):
            if grace and grace < int(meta.get("deletionGracePeriodSeconds") or grace + 1):
                meta["deletionGracePeriodSeconds"] = grace  # a shorter grace wins
                self._write(resource, key, self._objects[key], obj, "MODIFIED")
            return obj
        if options.get("propagationPolicy") == "Foreground":
            meta["finalizers"] = [*meta.get("finalizers", []), FOREGROUND]
        if meta.get("finalizers") or grace:
            meta["deletionTimestamp"] = _now()
            if grace:
                meta["deletionGracePeriodSeconds"] = grace
            self._write(resource, key, self._objects[key], obj, "MODIFIED")
        else:
            self._remove(resource, key)
        return obj

    def _collect_garbage(self) -> None:
        """Delete the dependents of owners that are gone or deleting in the foreground; let a
        foreground owner go once no dependent is left."""
        while self._collect_dependents() or self._release_owners():
            pass

    def _collect_dependents(self) -> bool:
        owners = {_meta(obj)["uid"]: obj for obj in self._objects.values()}
        for key, obj in list(self._objects.items()):
            refs = [ref["uid"] for ref in _meta(obj).get("ownerReferences") or []]
            orphaned = bool(refs) and all(
                uid not in owners or _foreground(owners[uid]) for uid in refs
            )
            if orphaned and not _meta(obj).get("deletionTimestamp"):
                self._delete(BY_PATH[_resource_key(obj)], key, {"propagationPolicy": "Background"})
                return True
        return False

    def _release_owners(self) -> bool:
        for key, obj in list(self._objects.items()):
            if not _foreground(obj) or self._has_dependents(_meta(obj)["uid"]):
                continue
            updated = copy.deepcopy(obj)
            left = [f for f in _meta(obj)["finalizers"] if f != FOREGROUND]
            updated["metadata"]["finalizers"] = left
            resource = BY_PATH[_resource_key(obj)]
            if left:
                self._write(resource, key, obj, updated, "MODIFIED")
            else:
                self._remove(resource, key)
            return True
        return False

    def _has_dependents(self, uid: str) -> bool:
        return any(
            uid in {ref["uid"] for ref in _meta(obj).get("ownerReferences") or []}
            for obj in self._objects.values()
        )

    def _pod(self, owner: Obj, template: Obj, name: str, labels: dict[str, str]) -> str:
        meta = _meta(owner)
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": {**(template.get("metadata") or {}).get("labels", {}), **labels},
                "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                "ownerReferences": [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                     "name": meta["name"], "uid": meta["uid"],
                                     "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": {**copy.deepcopy(template["spec"]), "nodeName": "node-0"},
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [{
                    "name": template["spec"]["containers"][0]["name"], "ready": False,
                    "restartCount": 0, "image": "x", "imageID": "",
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                }],
            },
        }  # fmt: skip
        self.create(BY_KIND["Pod"], meta["namespace"], pod)
        return name

    # -- watches ----------------------------------------------------------------------------

    def events_after(self, resource: Resource, namespace: str | None, selector: str,
                     version: int, timeout: float) -> Iterator[Obj]:  # fmt: skip
        """The watch events (as sent) after `version`, until `timeout` or expiry."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, lambda: self._wake(deadline))
        timer.daemon = True
        timer.start()
        try:
            with self._cond:
                epoch = self._epoch
                if version < self._compacted:
                    yield _gone(version, self._compacted)
                    return
            cursor = version
            while True:
                with self._cond:
                    batch = [e for e in self._events if e.version > cursor]
                    if not batch:
                        if self._closing or deadline.is_set():
                            return
                        if self._epoch != epoch:
                            yield _gone(cursor, self._compacted)
                            return
                        self._cond.wait(1.0)
                        continue
                    cursor = batch[-1].version
                for event in batch:
                    sent = _as_seen(event, resource, namespace, selector)
                    if sent is not None:
                        yield sent
        finally:
            timer.cancel()

    def _wake(self, flag: threading.Event) -> None:
        flag.set()
        with self._cond:
            self._cond.notify_all()


def _as_seen(event: _Event, resource: Resource, namespace: str | None,
             selector: str) -> Obj | None:  # fmt: skip
    """The event as a watch of (resource, namespace, selector) gets it, or None."""
    if event.resource != resource:
        return None
    if namespace is not None and _meta(event.new).get("namespace") != namespace:
        return None
    was = event.old is not None and matches(selector, _meta(event.old).get("labels") or {})
    now = matches(selector, _meta(event.new).get("labels") or {})
    kind = event.type
    if kind == "MODIFIED":
        kind = {(True, True): "MODIFIED", (False, True): "ADDED", (True, False): "DELETED"}.get(
            (was, now), ""
        )
    elif (kind == "DELETED" and not was) or (kind == "ADDED" and not now):
        kind = ""
    return {"type": kind, "object": copy.deepcopy(event.new)} if kind else None


def _string_data(obj: Obj) -> None:
    """A Secret's stringData is stored as data, base64-encoded, as the API server does."""
    if obj.get("kind") == "Secret" and "stringData" in obj:
        encoded = {k: base64.b64encode(str(v).encode()).decode() for k, v in
                   obj.pop("stringData").items()}  # fmt: skip
        obj["data"] = {**(obj.get("data") or {}), **encoded}


def _gone(asked: int, oldest: int) -> Obj:
    failure = Failure(410, "Expired", f"too old resource version: {asked} ({oldest})")
    return {"type": "ERROR", "object": failure.status()}


def _grace(obj: Obj, options: Obj) -> int:
    """The seconds a running pod's deletion waits for the kubelet; 0 for other objects."""
    spec = obj.get("spec") or {}
    if obj.get("kind") != "Pod" or not spec.get("nodeName"):
        return 0
    return int(options.get("gracePeriodSeconds", spec.get("terminationGracePeriodSeconds", 30)))


def _held(obj: Obj) -> bool:
    """Finalizers, or a terminating pod's kubelet, keep the object."""
    return bool(_meta(obj).get("finalizers")) or (
        obj.get("kind") == "Pod" and bool(_meta(obj).get("deletionGracePeriodSeconds"))
    )


def _foreground(obj: Obj) -> bool:
    return FOREGROUND in (_meta(obj).get("finalizers") or [])


def _resource_key(obj: Obj) -> tuple[str, str, str]:
    resource = BY_KIND[obj["kind"]]
    return (resource.group, resource.version, resource.plural)


def _restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return int(statuses[0].get("restartCount") or 0)


def _container(pod: Obj) -> str:
    return str(pod["spec"]["containers"][0]["name"])


# --- HTTP ----------------------------------------------------------------------------------


def _handler(fake: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
                fake.requests.append(Request(method, parts.path, query, body))
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    raise Failure(401, "Unauthorized", "Unauthorized")
                failing = next((f for f in fake.failing if f[0] == method), None)
                if failing is not None:
                    fake.failing.remove(failing)
                    raise Failure(failing[1], "ServiceUnavailable", "the server is overloaded")
                if parts.path == "/version":
                    self._json(200, {"major": "1", "minor": "37", "gitVersion": VERSION})
                    return
                route = _route(parts.path)
                if route.resource.kind in fake.missing:
                    raise Failure(404, "NotFound", "the server could not find the requested"
                                  " resource")  # fmt: skip
                self._dispatch(method, route, query, body)
            except Failure as failure:
                self._json(failure.code, failure.status())
            except (ValueError, KeyError, TypeError) as exc:
                self._json(400, Failure(400, "BadRequest", str(exc)).status())

        def _dispatch(self, method: str, route: _Route, query: dict[str, str],
                      body: Obj | None) -> None:  # fmt: skip
            res, ns, name, sub = route.resource, route.namespace, route.name, route.sub
            if name is None:
                if method == "POST":
                    self._json(201, fake.create(res, ns or "", body or {}))
                elif method == "GET" and query.get("watch") in ("true", "1"):
                    self._watch(res, ns, query)
                elif method == "GET":
                    self._json(200, fake.list(res, ns, query.get("labelSelector", "")))
                else:
                    raise Failure(405, "MethodNotAllowed", method)
                return
            if sub == "log" and method == "GET":
                self._log(ns or "", name, query)
                return
            status = sub == "status"
            if sub not in (None, "status"):
                raise Failure(404, "NotFound", f"no subresource {sub}")
            if method == "GET":
                self._json(200, fake.get(res, ns or "", name))
            elif method == "PUT":
                self._json(200, fake.replace(res, ns or "", name, body or {}, status=status))
            elif method == "PATCH":
                self._json(200, fake.patch(res, ns or "", name, body or {}, status=status))
            elif method == "DELETE":
                options = {**(body or {}), **{k: v for k, v in query.items()
                                               if k in ("gracePeriodSeconds",
                                                        "propagationPolicy")}}  # fmt: skip
                self._json(200, fake.delete(res, ns or "", name, options))
            else:
                raise Failure(405, "MethodNotAllowed", method)

        def _json(self, code: int, obj: Obj) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _log(self, namespace: str, pod: str, query: dict[str, str]) -> None:
            fake.get(BY_KIND["Pod"], namespace, pod)
            with fake._cond:
                data = fake.logs.get((namespace, pod))
            if data is None:
                raise Failure(400, "BadRequest", f'container "engine" in pod "{pod}" is waiting'
                              " to start: ContainerCreating")  # fmt: skip
            data = data[: int(query.get("limitBytes") or len(data))]
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _watch(self, res: Resource, ns: str | None, query: dict[str, str]) -> None:
            version = int(query.get("resourceVersion") or 0)
            timeout = float(query.get("timeoutSeconds") or 1800)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                if version == 0:
                    for item in fake.list(res, ns, query.get("labelSelector", ""))["items"]:
                        self._chunk({"type": "ADDED", "object": item})
                    version = fake.version
                for event in fake.events_after(
                    res, ns, query.get("labelSelector", ""), version, timeout
                ):
                    self._chunk(event)
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True

        def _chunk(self, event: Obj) -> None:
            line = json.dumps(event).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()

    return Handler


@dataclass(frozen=True)
class _Route:
    resource: Resource
    namespace: str | None
    name: str | None
    sub: str | None


def _route(path: str) -> _Route:
    """/api/v1/namespaces/NS/pods/NAME/log, /apis/GROUP/VERSION/PLURAL, ..."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise Failure(404, "NotFound", f"no API at {path}")
    namespace = None
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = BY_PATH.get((group, version, rest[0] if rest else ""))
    if resource is None or resource.namespaced != (namespace is not None):
        raise Failure(404, "NotFound", f"the server could not find the requested resource {path}")
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    return _Route(resource, namespace, name, sub)
