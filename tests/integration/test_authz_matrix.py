"""The authorization matrix: every role x every kind x every verb against a real control plane,
on SQLite and on PostgreSQL, checked against the reviewed table authz_matrix.txt (issue 11).

Roles (ROLES), each a label and how to make its key:
  anonymous      no token
  viewer, deployer, admin
                 keys of namespace team-a, where the objects are
  admin-team-b   an admin of another namespace, acting on team-a's objects
  agent-plane-a  the agent of cluster plane-a, which the cluster-bound objects belong to
  agent-plane-b  an agent of another cluster
  gateway        a gateway key
  join           a join key, good only for POST /join
  fleet-admin    the control plane's bootstrap admin token

Subjects (SUBJECTS): one object of every kind, made by the fleet admin in team-a (fleet kinds
fleet-scoped). Cluster plane-a, the Pool, the Replica, the Event about that Replica and the
replica's Endpoint belong to plane-a. Endpoints come twice: Endpoint/external (an upstream,
which tenants may write) and Endpoint/replica (the endpoint controller's).

Verbs, one real HTTP call each:
  get      GET the object
  list     GET the namespace's list (Replicas with fieldSelector=spec.cluster=plane-a, the
           selector an agent must send)
  watch    the same list with watch=true
  create   POST a fresh object (<stem>-new-<role>)
  update   PUT the live object unchanged
  patch    a merge patch adding a label
  status   the merge patch {"status": {}} on .../status
  delete   DELETE a throwaway object made for it (<stem>-del-<role>)

A 401 or 403 is `deny`; anything else is `allow`, and a 4xx other than those is noted beside
it (authorization let the call through and something else refused it). A denied answer must be
a Kubernetes Status with reason Unauthorized or Forbidden naming the principal, and a denied
write must leave the store's resourceVersion where it was. Which fields an agent or a gateway
may change within a kind it may write is test_identities.py's to check.

A role whose key the control plane refuses to create (422: the role does not exist yet) is
skipped, and the table has no rows for it. After a deliberate change to what a role may do,
regenerate the table on SQLite and review its diff:

    .venv/bin/python -m tests.integration.test_authz_matrix --write
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferplane.api import registry
from tests.integration import manifests
from tests.integration.manifests import apikey, path
from tests.support import postgres
from tests.support.control import ControlProcess

pytestmark = pytest.mark.integration

TABLE = Path(__file__).with_name("authz_matrix.txt")
NS = "team-a"
OTHER_NS = "team-b"
SYSTEM = "inferplane-system"
PLANE = "plane-a"
"""The cluster the cluster-bound objects belong to."""
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "status")
WRITES = frozenset({"create", "update", "patch", "delete", "status"})
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
"""A list nothing is ever written to: its resourceVersion is the store's."""

Object = dict[str, Any]


class RoleMissing(Exception):
    """The control plane does not know the role yet: creating its key answered 422."""


# -- the control plane and its objects ----------------------------------------------------------


@dataclass
class Plane:
    """A control plane holding one object of every subject, and its fleet admin's client."""

    control: ControlProcess
    admin: httpx.Client

    def new_key(self, name: str, namespace: str, role: str, **spec: Any) -> str:
        body = apikey(name, namespace, role)
        body["spec"].update(spec)
        answer = self.admin.post(path("apikeys", namespace), json=body)
        if answer.status_code == 422 and namespace == SYSTEM:
            raise RoleMissing(f"creating a key of role {role!r} answered 422: {answer.text}")
        assert answer.status_code == 201, answer.text
        token: str = answer.json()["status"]["token"]
        return token

    def make(self, subject: Subject, name: str) -> None:
        answer = self.admin.post(subject.path(), json=subject.build(name))
        assert answer.status_code == 201, f"{subject.label} {name}: {answer.text}"

    def state(self, subject: Subject, name: str) -> str | None:
        """What a denied write must leave as it was: the object's spec, labels and deletion
        mark, None when it does not exist. Not its resourceVersion or status: controllers
        write those meanwhile (a fresh Replica gets its engine token)."""
        answer = self.admin.get(subject.path(name))
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        obj = answer.json()
        meta = obj["metadata"]
        kept = [obj.get("spec"), meta.get("labels"), meta.get("deletionTimestamp")]
        return json.dumps(kept, sort_keys=True)


# -- roles --------------------------------------------------------------------------------------

KeyMaker = Callable[[Plane, str], str]


@dataclass(frozen=True)
class Role:
    label: str
    key: KeyMaker
    """Makes the role's token (named after the label); "" for no token."""


def _anonymous(plane: Plane, label: str) -> str:
    return ""


def _fleet_admin(plane: Plane, label: str) -> str:
    return plane.control.admin_token


def _key(namespace: str, role: str, **spec: Any) -> KeyMaker:
    def make(plane: Plane, label: str) -> str:
        return plane.new_key(f"matrix-{label}", namespace, role, **spec)

    return make


ROLES = (
    Role("anonymous", _anonymous),
    Role("viewer", _key(NS, "viewer")),
    Role("deployer", _key(NS, "deployer")),
    Role("admin", _key(NS, "admin")),
    Role("admin-team-b", _key(OTHER_NS, "admin")),
    Role("agent-plane-a", _key(SYSTEM, "agent", cluster=PLANE)),
    Role("agent-plane-b", _key(SYSTEM, "agent", cluster="plane-b")),
    Role("gateway", _key(SYSTEM, "gateway")),
    Role("join", _key(SYSTEM, "join")),
    Role("fleet-admin", _fleet_admin),
)


# -- subjects -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    label: str
    """The kind, or kind/variant where one kind has objects that different roles write."""
    plural: str
    build: Callable[[str], Object]
    """A valid object of this subject with the given name."""
    stem: str
    """The shared object's name, and the stem of the fresh and throwaway ones' names."""
    namespaced: bool = True
    selector: str | None = None
    """The fieldSelector lists and watches carry."""

    def path(self, name: str = "", sub: str = "") -> str:
        return path(self.plural, NS if self.namespaced else None, name, sub)


def _about(kind: str, name: str) -> dict[str, str]:
    return {"kind": kind, "namespace": NS, "name": name}


SUBJECTS = (
    Subject("ApiKey", "apikeys", lambda n: apikey(n, NS, "viewer"), "apikey"),
    Subject("Cluster", "clusters", manifests.cluster, PLANE, namespaced=False),
    Subject(
        "Deployment",
        "deployments",
        lambda n: manifests.deployment(n, NS, model="model", replicas=0),
        "deployment",
    ),
    Subject(
        "Endpoint/external",
        "endpoints",
        lambda n: manifests.endpoint(n, NS, "https://api.example.com/v1", external=True),
        "endpoint-external",
    ),
    Subject(
        "Endpoint/replica",
        "endpoints",
        lambda n: manifests.endpoint(n, NS, "http://127.0.0.1:9/", replica="replica"),
        "endpoint-replica",
    ),
    Subject(
        "Event",
        "events",
        lambda n: manifests.event(n, NS, about=_about("Replica", "replica"), reason="Matrix"),
        "event",
    ),
    Subject("Model", "models", lambda n: manifests.model(n, NS), "model"),
    Subject(
        "ModelCache",
        "modelcaches",
        lambda n: manifests.model_cache(n, "model", NS),
        "modelcache",
        namespaced=False,
    ),
    Subject("Pool", "pools", lambda n: manifests.pool(n, PLANE), "pool", namespaced=False),
    Subject("Quota", "quotas", lambda n: manifests.quota(n, NS, maxReplicas=10), "quota"),
    Subject(
        "Replica",
        "replicas",
        lambda n: manifests.replica(n, NS, cluster=PLANE, pool="pool"),
        "replica",
        selector=f"spec.cluster={PLANE}",
    ),
    Subject("Secret", "secrets", lambda n: manifests.secret(n, NS, {"token": "sk-m"}), "secret"),
    Subject(
        "Service",
        "services",
        lambda n: manifests.service(n, NS, endpoint="endpoint-external"),
        "service",
    ),
)


def start_plane(data_dir: Path, store_url: str | None = None) -> Plane:
    """A control plane without controllers (objects stay as written) holding every subject."""
    control = ControlProcess(data_dir, store_url=store_url, extra_args=["--no-controllers"])
    control.start()
    plane = Plane(control, control.http())
    for subject in SUBJECTS:
        plane.make(subject, subject.stem)
    return plane


def stop_plane(plane: Plane) -> None:
    plane.admin.close()
    plane.control.stop()


# -- one cell: a role's verb on a subject -------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    role: str
    subject: str
    verb: str
    code: int
    reason: str

    @property
    def denied(self) -> bool:
        return self.code in (401, 403)

    def line(self) -> str:
        outcome = "deny" if self.denied else "allow"
        if not self.denied and self.code >= 400:
            outcome += f"   {self.code} {self.reason}"
        return f"{self.role:<14} {self.subject:<18} {self.verb:<7} {outcome}"


def _list_params(subject: Subject) -> dict[str, str]:
    return {"fieldSelector": subject.selector} if subject.selector else {}


def _get(plane: Plane, http: httpx.Client, subject: Subject, role: str) -> httpx.Response:
    return http.get(subject.path(subject.stem))


def _list(plane: Plane, http: httpx.Client, subject: Subject, role: str) -> httpx.Response:
    return http.get(subject.path(), params=_list_params(subject))


def _watch(plane: Plane, http: httpx.Client, subject: Subject, role: str) -> httpx.Response:
    params = {**_list_params(subject), "watch": "true", "timeoutSeconds": "1"}
    # An allowed watch streams on; its status line is all the matrix needs.
    with http.stream("GET", subject.path(), params=params) as answer:
        if not answer.is_success:
            answer.read()
    return answer


def _create(plane: Plane, http: httpx.Client, subject: Subject, role: str) -> httpx.Response:
    return http.post(subject.path(), json=subject.build(f"{subject.stem}-new-{role}"))


def _update(plane: Plane, http: httpx.Client, subject: Subject, role: str) -> httpx.Response:
    target = subject.path(subject.stem)
    return http.put(target, json=plane.admin.get(target).json())


def _patch(plane: Plane, http: httpx.Client, subject: Subject, role: str) -> httpx.Response:
    label = {"metadata": {"labels": {"authz-matrix": role}}}
    return http.patch(subject.path(subject.stem), json=label, headers=MERGE_PATCH)


def _status(plane: Plane, http: httpx.Client, subject: Subject, role: str) -> httpx.Response:
    target = subject.path(subject.stem, "status")
    return http.patch(target, json={"status": {}}, headers=MERGE_PATCH)


def _delete(plane: Plane, http: httpx.Client, subject: Subject, role: str) -> httpx.Response:
    return http.delete(subject.path(f"{subject.stem}-del-{role}"))


CALLS: dict[str, Callable[[Plane, httpx.Client, Subject, str], httpx.Response]] = {
    "get": _get,
    "list": _list,
    "watch": _watch,
    "create": _create,
    "update": _update,
    "patch": _patch,
    "status": _status,
    "delete": _delete,
}


def _reason(answer: httpx.Response) -> str:
    if answer.is_success:
        return ""  # an allowed watch's body is still streaming
    try:
        body = answer.json()
    except ValueError:
        return "(no JSON body)"
    return str(body.get("reason")) if isinstance(body, dict) else "(not a Status)"


def run_cell(
    plane: Plane, http: httpx.Client, role: str, subject: Subject, verb: str
) -> tuple[Cell, list[str]]:
    """Make the call; return its cell and what is wrong with a denial, if anything."""
    if verb == "delete":
        plane.make(subject, f"{subject.stem}-del-{role}")
    target = _target(subject, verb, role)
    before = plane.state(subject, target) if verb in WRITES else None
    answer = CALLS[verb](plane, http, subject, role)
    cell = Cell(role, subject.label, verb, answer.status_code, _reason(answer))
    if not cell.denied:
        return cell, []
    problems = _denial_problems(answer, http)
    if verb in WRITES and (after := plane.state(subject, target)) != before:
        problems.append(f"{target} changed: {before} -> {after}")
    return cell, [f"{cell.line()}: {problem}" for problem in problems]


def _target(subject: Subject, verb: str, role: str) -> str:
    """The name of the object a write by `role` touches."""
    if verb == "create":
        return f"{subject.stem}-new-{role}"
    if verb == "delete":
        return f"{subject.stem}-del-{role}"
    return subject.stem


def _denial_problems(answer: httpx.Response, http: httpx.Client) -> list[str]:
    """A denial is a Kubernetes Status that says why and names who was refused."""
    body = answer.json()
    expected = "Unauthorized" if answer.status_code == 401 else "Forbidden"
    problems = []
    if body.get("kind") != "Status" or body.get("status") != "Failure":
        problems.append(f"not a Failure Status: {body}")
    if body.get("reason") != expected or body.get("code") != answer.status_code:
        problems.append(f"reason {body.get('reason')!r}, code {body.get('code')!r}")
    message = str(body.get("message", ""))
    token = http.headers.get("authorization")
    if token is None and "bearer token" not in message:
        problems.append(f"a refusal without a token does not ask for one: {message!r}")
    elif token is not None and "apikey:" not in message:
        problems.append(f"the message names no principal: {message!r}")
    return problems


def run_role(plane: Plane, role: Role) -> tuple[list[Cell], list[str]]:
    """Every cell of one role (raises RoleMissing when its key cannot be made)."""
    token = role.key(plane, role.label)
    cells, problems = [], []
    with plane.control.http(token) as http:
        for subject in SUBJECTS:
            for verb in VERBS:
                cell, wrong = run_cell(plane, http, role.label, subject, verb)
                cells.append(cell)
                problems += wrong
    return cells, problems


# -- the table ----------------------------------------------------------------------------------


def table_lines(cells: list[Cell]) -> list[str]:
    """Sorted by role and subject; verbs in VERBS order."""
    order = {verb: i for i, verb in enumerate(VERBS)}
    ranked = sorted(cells, key=lambda c: (c.role, c.subject, order[c.verb]))
    return [cell.line() for cell in ranked]


def expected_lines(role: str) -> list[str]:
    lines = TABLE.read_text().splitlines()
    return [line for line in lines if line.split(maxsplit=1)[0] == role]


def _role_label(role: Role) -> str:
    return role.label


# -- the tests ----------------------------------------------------------------------------------


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Plane]:
    store_url = None
    if request.param == "postgres":
        server: postgres.PostgresServer = request.getfixturevalue("postgres_server")
        server.drop_database("authz_matrix")
        store_url = server.create_database("authz_matrix")
    started = start_plane(tmp_path_factory.mktemp(f"authz-{request.param}"), store_url)
    yield started
    stop_plane(started)


@pytest.mark.parametrize("role", ROLES, ids=_role_label)
def test_the_role_may_do_what_the_table_says(plane: Plane, role: Role) -> None:
    try:
        cells, problems = run_role(plane, role)
    except RoleMissing as exc:
        pytest.skip(f"role {role.label} does not exist yet: {exc}")
    expected, got = expected_lines(role.label), table_lines(cells)
    assert expected, f"authz_matrix.txt has no rows for {role.label}: regenerate it (see above)"
    diff = "\n".join(difflib.unified_diff(expected, got, "authz_matrix.txt", "this run", n=0))
    assert got == expected, f"{role.label} differs from the table:\n{diff}"
    assert not problems, "\n".join(problems)


def test_the_matrix_covers_every_kind_and_the_table_only_known_cells() -> None:
    kinds = {subject.label.split("/")[0] for subject in SUBJECTS}
    assert kinds == {info.kind for info in registry.all_kinds()}, "a kind is missing a subject"
    known = {(r.label, s.label, v) for r in ROLES for s in SUBJECTS for v in VERBS}
    rows = [tuple(line.split()[:3]) for line in TABLE.read_text().splitlines()]
    assert len(rows) == len(set(rows)), "a cell appears twice in authz_matrix.txt"
    assert set(rows) <= known, f"rows for no known cell: {sorted(set(rows) - known)}"


# -- regenerating the table ---------------------------------------------------------------------


def generate(*, store_url: str | None = None) -> list[str]:
    """The table as a control plane answers it now; roles it does not know yet are left out."""
    with tempfile.TemporaryDirectory(prefix="authz-matrix-") as data_dir:
        plane = start_plane(Path(data_dir), store_url)
        try:
            cells: list[Cell] = []
            for role in ROLES:
                try:
                    cells += run_role(plane, role)[0]
                except RoleMissing as exc:
                    print(f"left out role {role.label}: {exc}", file=sys.stderr)
        finally:
            stop_plane(plane)
    return table_lines(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write {TABLE.name}")
    parser.add_argument("--store", help="a store URL (default: SQLite in a temporary directory)")
    args = parser.parse_args(argv)
    lines = generate(store_url=args.store)
    text = "\n".join(lines) + "\n"
    if args.write:
        TABLE.write_text(text)
        print(f"wrote {len(lines)} rows to {TABLE}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
