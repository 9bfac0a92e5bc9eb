"""The Python client of the resource API (docs/reference/resource-api.md).

Objects travel as plain dicts, exactly as the server sends them: the client is used by the CLI,
the agent, the gateway and tests, which each want the wire shape and nothing in between. Kinds
are named by anything ``registry.lookup`` accepts (``Deployment``, ``deployments``, ``deploy``).

Every failure is one of the exceptions in ``errors``: ``ApiError`` (and a subclass per Status
reason) when the server answered with an error, ``ConnectionFailed`` when it could not be
reached.

The names below are the client's public surface, imported as ``client.Client``,
``client.NotFound``...; the modules hold one concept each:

- ``resources``: ``Client``, reads, watches and writes of objects;
- ``connection``: one control plane over HTTP, where every failure is translated;
- ``errors``: the exception tree; ``reachability``: why a server could not be reached;
- ``watch``: the watch stream; ``applying``: what apply sends and reports;
- ``addressing``: paths, namespaces and shared query parameters;
- ``replicalogs`` and ``audittrail``: the log relay and the audit trail's read API.
"""

from inferplane.client.addressing import API_PREFIX
from inferplane.client.applying import APPLY_ATTEMPTS, ApplyResult
from inferplane.client.errors import (
    AlreadyExists,
    ApiError,
    BadObject,
    BadRequest,
    Cause,
    CertificateRefused,
    ClientError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    Unauthorized,
    UntrustedServer,
    error_from_status,
)
from inferplane.client.objects import Object, ObjectList, Objects
from inferplane.client.reachability import unreachable
from inferplane.client.resources import MERGE_PATCH, Client
from inferplane.client.watch import Watch, WatchEvent

__all__ = [
    "API_PREFIX",
    "APPLY_ATTEMPTS",
    "MERGE_PATCH",
    "AlreadyExists",
    "ApiError",
    "ApplyResult",
    "BadObject",
    "BadRequest",
    "Cause",
    "CertificateRefused",
    "Client",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "Object",
    "ObjectList",
    "Objects",
    "Unauthorized",
    "UntrustedServer",
    "Watch",
    "WatchEvent",
    "error_from_status",
    "unreachable",
]
