"""The control plane's error tree, rendered as Kubernetes `Status` bodies.

Handlers raise these; one exception handler turns them into responses, so every 4xx reads the
same and names the field at fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse

from inferplane.api.errors import Cause
from inferplane.store import base as store_errors


@dataclass
class ApiProblem(Exception):
    """An error a client should see: HTTP code, Kubernetes reason, message, field causes."""

    code: int
    reason: str
    message: str
    causes: list[Cause] = field(default_factory=list)
    kind: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        return self.message

    def body(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.kind:
            details["kind"] = self.kind
        if self.name:
            details["name"] = self.name
        if self.causes:
            details["causes"] = [
                {"field": c.field, "reason": c.reason, "message": c.message} for c in self.causes
            ]
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "code": self.code,
            "reason": self.reason,
            "message": self.message,
            "details": details,
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.code)


def bad_request(message: str, *, causes: list[Cause] | None = None) -> ApiProblem:
    return ApiProblem(400, "BadRequest", message, causes or [])


def invalid(kind: str, name: str, causes: list[Cause]) -> ApiProblem:
    listed = "; ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    message = f'{kind}.inferplane.dev "{name}" is invalid: {listed}'
    return ApiProblem(422, "Invalid", message, causes, kind=kind, name=name)


def unauthorized(message: str) -> ApiProblem:
    return ApiProblem(401, "Unauthorized", message)


def forbidden(message: str) -> ApiProblem:
    return ApiProblem(403, "Forbidden", message)


def not_found(message: str) -> ApiProblem:
    return ApiProblem(404, "NotFound", message)


def from_store(exc: store_errors.StoreError, *, plural: str, name: str) -> ApiProblem:
    """Translate a store exception into what the client sees."""
    if isinstance(exc, store_errors.NotFoundError):
        return ApiProblem(404, "NotFound", f'{plural} "{name}" not found', name=name)
    if isinstance(exc, store_errors.AlreadyExistsError):
        return ApiProblem(409, "AlreadyExists", f'{plural} "{name}" already exists', name=name)
    if isinstance(exc, store_errors.ConflictError):
        message = (
            f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified;'
            " please apply your changes to the latest version and try again"
        )
        return ApiProblem(409, "Conflict", message, name=name)
    if isinstance(exc, store_errors.GoneError):
        return ApiProblem(410, "Gone", f"too old resource version: {exc}; list again and re-watch")
    return ApiProblem(500, "InternalError", f"store error: {exc}")
