"""The metrics channel's API: agents and gateways post load; nothing here touches the store.

POST {PREFIX}/load/replicas   an agent's ReplicaLoadReport (its own cluster's replicas)
POST {PREFIX}/load/gateways   a gateway's GatewayTrafficReport

Both answer 202 with how many entries were kept. The reports land in the LoadBoard the
autoscaler reads; a replica's load counts only when its own cluster's agent reported it, which
the autoscaler checks against the replica's binding (control/controllers/autoscaling.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from inferplane.api import errors as api_errors
from inferplane.api import loadreports, validation
from inferplane.control import auth, errors, requests, resources
from inferplane.control.loadboard import LoadBoard
from inferplane.policy import autoscaling

PREFIX = resources.PREFIX


def board_of(request: Request) -> LoadBoard:
    return resources.plane_of(request).load_board


async def post_replicas(request: Request) -> JSONResponse:
    principal = resources.principal_of(request)
    if not (principal.fleet_admin or principal.agent):
        raise errors.forbidden(f"{principal} cannot report replica load: agents only")
    report = await _read(request, loadreports.ReplicaLoadReport)
    cluster = _cluster(principal, report.cluster)
    kept = board_of(request).add_replicas(
        cluster,
        (
            (
                e.namespace,
                autoscaling.Sample(
                    time=0.0,  # the board stamps its own clock
                    replica=e.name,
                    running=e.running,
                    waiting=e.waiting,
                    kv_cache_usage=e.kvCacheUsage,
                    rps=e.requestsPerSecond,
                    tokens_per_second=e.generationTokensPerSecond,
                    ttft=e.ttftSeconds,
                    tpot=e.tpotSeconds,
                ),
            )
            for e in report.replicas
        ),
    )
    return JSONResponse({"kept": kept}, status_code=202)


async def post_gateways(request: Request) -> JSONResponse:
    principal = resources.principal_of(request)
    if not (principal.fleet_admin or principal.gateway):
        raise errors.forbidden(f"{principal} cannot report traffic: gateways only")
    report = await _read(request, loadreports.GatewayTrafficReport)
    kept = board_of(request).add_gateway(
        principal.name,
        f"{principal.name}/{report.instance}",
        (
            (
                (e.namespace, e.name),
                autoscaling.GatewaySample(
                    time=0.0, gateway="", in_flight=e.inFlight, held=e.held, arrivals=e.arrivals
                ),
            )
            for e in report.deployments
        ),
    )
    return JSONResponse({"kept": kept}, status_code=202)


def _cluster(principal: auth.Principal, asked: str | None) -> str:
    if principal.agent:
        if asked is not None and asked != principal.cluster:
            raise errors.forbidden(f"{principal} reports for cluster {principal.cluster!r} only")
        return principal.cluster or ""
    if asked is None:
        cause = errors.Cause("cluster", "Field required", "FieldValueRequired")
        raise errors.invalid(loadreports.ReplicaLoadReport.KIND, "", [cause])
    return asked


async def _read(request: Request, model: Any) -> Any:
    limit = resources.plane_of(request).settings.max_body_bytes
    body = await requests.read_json(request, limit=limit)
    try:
        return validation.validate(model, body, kind=model.KIND)
    except api_errors.ValidationFailure as exc:
        raise errors.invalid(model.KIND, "", list(exc.causes)) from exc


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["load"])
    api.add_api_route("/load/replicas", post_replicas, methods=["POST"], status_code=202)
    api.add_api_route("/load/gateways", post_gateways, methods=["POST"], status_code=202)
    return api
