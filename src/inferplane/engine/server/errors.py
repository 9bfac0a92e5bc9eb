"""OpenAI's error JSON, and the reading of a request body into a model with errors that name
the parameter at fault.

`{"error": {"message": ..., "type": "invalid_request_error", "param": "top_p", "code": null}}`
with 400 for bad input, 404 (`NotFoundError`) for an unknown model, 413 for a body over the
limit and 503 while shutting down. `install` makes FastAPI's own errors (an unknown route, a
wrong method, a failed validation, an unhandled exception) take the same shape, or V2's
`{"error": "..."}` under `/v2`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

MAX_BODY_BYTES = 4 << 20
"""The largest request body taken; bigger ones get a 413."""

Model = TypeVar("Model", bound=BaseModel)


class APIError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, object]:
        error = {"message": self.message, "type": self.type, "param": self.param}
        return {"error": {**error, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def model_not_found(name: str) -> APIError:
    return APIError(
        f"The model `{name}` does not exist.",
        status=404,
        type="NotFoundError",
        param="model",
        code=404,
    )


def unavailable(message: str) -> APIError:
    return APIError(message, status=503, type="service_unavailable", code=503)


def internal(message: str) -> APIError:
    """The engine failed while running the request (not the request's fault)."""
    return APIError(message, status=500, type="internal_server_error", code=500)


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    return shaped(request, exc)


def install(app: FastAPI) -> None:
    """Answer APIError, and FastAPI's own errors, in the shape of the route's protocol."""
    app.add_exception_handler(APIError, api_error_handler)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unhandled_error)


def is_v2(request: Request) -> bool:
    path = request.url.path
    return path == "/v2" or path.startswith("/v2/")


def shaped(
    request: Request, error: APIError, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """`error` in the shape of the request's protocol: V2's under /v2, else OpenAI's."""
    body = {"error": error.message} if is_v2(request) else error.body()
    return JSONResponse(body, status_code=error.status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """404 for an unknown route, 405 for a wrong method (with its Allow header)."""
    assert isinstance(exc, HTTPException)
    where = f"({request.method} {request.url.path})"
    message = f"Invalid URL {where}" if exc.status_code == 404 else f"{exc.detail} {where}"
    error = APIError(message, status=exc.status_code, code=exc.status_code)
    return shaped(request, error, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 for a route's declared parameters, as a 400 naming the first one: bad
    input is a 400 in both OpenAI's API and V2."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    loc = [str(part) for part in first["loc"]]
    param = _param(loc[1:]) if len(loc) > 1 else None
    message = f"{param or 'request'}: {first['msg']}"
    return shaped(request, APIError(message, param=param))


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: still a 500 in the route's error shape (the exception is logged by the server)."""
    return shaped(request, internal(f"internal error: {type(exc).__name__}"))


async def read_body(request: Request, model: type[Model], *, limit: int = MAX_BODY_BYTES) -> Model:
    """The body parsed as `model`; APIError 413 past `limit`, 400 for bad JSON or fields."""
    data = await _read_limited(request, limit)
    try:
        parsed = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(f"could not parse the JSON body of the request: {exc}") from exc
    try:
        return model.model_validate(parsed)
    except ValidationError as exc:
        raise from_validation(exc) from exc


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> APIError:
    return APIError(f"the request body exceeds {limit} bytes", status=413, code=413)


def from_validation(exc: ValidationError) -> APIError:
    """The first pydantic error as a 400 whose `param` is the field's dotted path."""
    first = exc.errors()[0]
    loc = [str(part) for part in first["loc"]]
    param = _param(loc)
    if first["type"] == "model_type":
        return APIError(f"the body must be a JSON object: {first['msg']}", param=param)
    where = param or "body"
    return APIError(f"{where}: {first['msg']}", param=param)


def _param(loc: list[str]) -> str | None:
    """`["messages", "0", "role"]` → `messages.0.role`; union branch names are dropped."""
    kept = [part for part in loc if not _is_type_name(part)]
    return ".".join(kept) or None


def _is_type_name(part: str) -> bool:
    return part in {"str", "int", "list[int]", "list[str]", "list[ContentPart]"} or (
        part.startswith(("list[", "function-", "literal["))
    )
