"""Fuzzing the control plane's resource API with schemathesis, from its own OpenAPI document.

The served document declares the generic routes once over `{plural}` and no request bodies
(the handlers read them themselves), so the test specializes it before fuzzing: one
operation per kind and route, with the kind's own JSON schema from `inferplane.api.registry`
as the body, and the query parameters the handlers read. A real control plane on loopback,
called as fleet admin; each case must get no 5xx, a 4xx must be a Kubernetes `Status` with a
message (a 422 with causes naming fields), and the process must keep serving.

INFERPLANE_FUZZ_EXAMPLES sets the examples per operation (default 10, bounded for
`make test`); see docs/security-fuzzing.md.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from inferplane.api import registry
from inferplane.control import server
from inferplane.control.settings import ControlSettings
from tests.support.control import ControlProcess
from tests.unit.api import samples

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("INFERPLANE_FUZZ_EXAMPLES", "10"))
"""Examples per operation: small for `make test`, raise it for a longer run."""
COVERAGE = os.environ.get("INFERPLANE_FUZZ_COVERAGE") == "1"
"""Also run schemathesis's coverage phase: every boundary and negative value each schema
implies, deterministically (thousands of cases for a big kind; minutes, not seconds)."""
PREFIX = "/apis/inferplane.dev/v1"
LONG_POLLS = ("/log", "/log-requests")
"""Routes that hold a request open by design (an agent's log relay): left out."""
QUERY = {
    "GET": ("labelSelector", "fieldSelector", "limit", "resourceVersion"),
    "POST": ("dryRun",),
    "PUT": ("dryRun",),
    "PATCH": ("dryRun",),
    "DELETE": ("dryRun",),
}
"""The query parameters the handlers read (not declared in the document); `watch` is left
out: a watch streams until the client goes."""
SEED = "fuzz"
"""The namespace and name of one object of each kind, made before fuzzing, so that the
generated names hit an existing object about half the time and reach admission."""
SCALE = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
        "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    },
}


def specialize(served: dict[str, Any]) -> dict[str, Any]:
    """The served document with `{plural}` expanded per kind and request bodies added."""
    doc = copy.deepcopy(served)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    paths: dict[str, Any] = {}
    for path, operations in served["paths"].items():
        if any(path.endswith(tail) for tail in LONG_POLLS):
            continue
        if "{plural}" not in path:
            paths[path] = operations
            continue
        for info in registry.all_kinds():
            if _serves(path, info):
                concrete = path.replace("{plural}", info.plural)
                paths[concrete] = _operations(operations, info, path, schemas)
    doc["paths"] = paths
    return doc


def _serves(path: str, info: registry.KindInfo) -> bool:
    if path.endswith("/scale") and not info.has_scale:
        return False
    if path.startswith(f"{PREFIX}/namespaces/"):
        return info.namespaced
    # fleet paths: fleet kinds, and lists across namespaces of namespaced ones
    return not info.namespaced or path == f"{PREFIX}/{{plural}}"


def _operations(
    operations: dict[str, Any], info: registry.KindInfo, path: str, schemas: dict[str, Any]
) -> dict[str, Any]:
    ref = _register(info, schemas)
    out: dict[str, Any] = {}
    for method, operation in operations.items():
        if info.namespaced and "/namespaces/" not in path and method != "get":
            continue
        op = copy.deepcopy(operation)
        op["operationId"] = f"{op['operationId']}_{info.plural}"
        params = [p for p in op.get("parameters", []) if p["name"] != "plural"]
        params += [_query(name) for name in QUERY[method.upper()] if _takes(name, path)]
        op["parameters"] = params
        if method in ("post", "put", "patch"):
            op["requestBody"] = _body(method, path, ref)
        out[method] = op
    return out


def _takes(name: str, path: str) -> bool:
    # selectors and list versions only mean something on a list
    return name == "dryRun" or path.endswith("{plural}")


def _query(name: str) -> dict[str, Any]:
    schema = {"type": "integer"} if name == "limit" else {"type": "string"}
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _body(method: str, path: str, ref: dict[str, Any]) -> dict[str, Any]:
    schema = SCALE if path.endswith("/scale") else ref
    media = "application/merge-patch+json" if method == "patch" else "application/json"
    return {"required": True, "content": {media: {"schema": schema}}}


def _register(info: registry.KindInfo, schemas: dict[str, Any]) -> dict[str, Any]:
    """The kind's JSON schema under components/schemas, its $defs beside it."""
    schema = info.model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        assert schemas.get(name, definition) == definition, f"two schemas named {name}"
        schemas[name] = definition
    schemas[info.kind] = schema
    return {"$ref": f"#/components/schemas/{info.kind}"}


def own_document() -> dict[str, Any]:
    """The document the control plane serves at /openapi.json, built from its app (the
    operations must be known when pytest collects; `test_the_document_is_the_served_one`
    checks that it is the same)."""
    app = server.create_app(ControlSettings(data_dir=Path("unused")))
    return app.openapi()


CONFIG = schemathesis.Config.from_dict(
    {"phases": {"coverage": {"enabled": COVERAGE}}, "generation": {"max-examples": EXAMPLES}}
)
schema = schemathesis.openapi.from_dict(specialize(own_document()), config=CONFIG)


@schema.hook
def before_generate_path_parameters(
    context: schemathesis.HookContext, strategy: st.SearchStrategy[dict[str, Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Half the paths name the seeded object, so that writes reach admission."""
    return st.one_of(strategy, strategy.map(lambda params: dict.fromkeys(params or {}, SEED)))


@schema.hook
def before_generate_body(
    context: schemathesis.HookContext, strategy: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Half the bodies that have metadata name the seeded object too."""
    return st.one_of(strategy, strategy.map(_seed_metadata))


def _seed_metadata(body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
        body = {**body, "metadata": {**body["metadata"], "name": SEED, "namespace": SEED}}
    return body


@pytest.fixture(scope="module")
def seeded(control: ControlProcess) -> None:
    """One small valid object of each kind, as SEED/SEED (best effort: a kind whose sample
    is refused is fuzzed all the same)."""
    with control.http() as client:
        for info in registry.all_kinds():
            where = f"{PREFIX}/namespaces/{SEED}" if info.namespaced else PREFIX
            body = samples.manifest(info.kind) if info.kind in samples.MINIMAL else None
            if body is not None:
                body["metadata"] = {"name": SEED}
                client.post(f"{where}/{info.plural}", json=body)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_every_4xx_is_a_status(
    case: schemathesis.Case, control: ControlProcess, seeded: None
) -> None:
    bearer = {"Authorization": f"Bearer {control.admin_token}"}
    response = case.call(base_url=control.url, headers=bearer, timeout=10)
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        check_status(response.status_code, response.json())
    assert control.process is not None and control.process.poll() is None


def check_status(code: int, body: dict[str, Any]) -> None:
    assert body.get("kind") == "Status" and body.get("status") == "Failure", body
    assert body.get("code") == code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    if code == 422:
        causes = body.get("details", {}).get("causes") or []
        assert causes and all(c.get("message") for c in causes), body


def test_the_document_is_the_served_one(control: ControlProcess) -> None:
    assert httpx.get(f"{control.url}/openapi.json").json() == own_document()


def test_the_control_plane_still_serves(control: ControlProcess) -> None:
    assert httpx.get(f"{control.url}/readyz").status_code == 200
    with control.http() as client:
        assert client.get(f"{PREFIX}/clusters").status_code == 200
