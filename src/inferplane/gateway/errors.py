"""Errors as the client's protocol writes them: OpenAI's error JSON, or KServe V2's."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from inferplane.gateway.wire.server import Header


@dataclass
class GatewayError(Exception):
    """A request the gateway answers with an error itself."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    cause: str = "bad_request"
    """For metrics: errors by cause (bad_request, auth, rate_limit, budget, no_endpoint,
    upstream, timeout)."""
    headers: tuple[Header, ...] = ()

    def openai_body(self) -> bytes:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return orjson.dumps({"error": error})

    def v2_body(self) -> bytes:
        return orjson.dumps({"error": self.message})


def bad_request(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param)


def unauthorized(message: str) -> GatewayError:
    return GatewayError(401, message, "authentication_error", code="invalid_api_key", cause="auth")


def model_not_found(model: str, namespace: str) -> GatewayError:
    message = (
        f"The model `{model}` does not exist in namespace {namespace!r} or you do not "
        "have access to it."
    )
    return GatewayError(404, message, param="model", code="model_not_found", cause="bad_request")


def not_found(path: str) -> GatewayError:
    return GatewayError(404, f"no route for {path}", code="not_found")


def no_endpoint(model: str, why: str) -> GatewayError:
    message = f"no endpoint of `{model}` can take the request: {why}"
    return GatewayError(503, message, "server_error", code="no_endpoint", cause="no_endpoint")


def upstream_failed(model: str, why: str, status: int = 502) -> GatewayError:
    message = f"every upstream of `{model}` failed: {why}"
    return GatewayError(status, message, "server_error", code="upstream_error", cause="upstream")


def held_too_long(model: str, seconds: float) -> GatewayError:
    message = f"no replica of `{model}` became ready within {seconds:g} s (scale from zero)"
    return GatewayError(
        503, message, "server_error", code="scale_from_zero_timeout", cause="timeout"
    )
