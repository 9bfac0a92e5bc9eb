"""The reference engine as a member of a multi-node gang.

A runtime that runs gangs (a LeaderWorkerSet on Kubernetes, `srun` in a Slurm job, a Ray
placement group) starts the same command on every node and tells each member its place in
LeaderWorkerSet's variables. Member 0, the leader, serves the model as a single-node engine
does. The others are workers: the reference engine does not shard a model across nodes, so a
worker holds its node's share of the gang and follows its leader. It answers /health (so a
runtime probes every member alike) and exits when the leader, once seen, stops answering for
LEADER_LOST_SECONDS: the runtime sees a member end, and restarts the gang as one unit.

Engines that do shard across nodes (vLLM over Ray, say) run as recipe `custom` with a
command of their own that reads the same variables.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger(__name__)

LEADER_ADDRESS = "LWS_LEADER_ADDRESS"
WORKER_INDEX = "LWS_WORKER_INDEX"
GROUP_SIZE = "LWS_GROUP_SIZE"
LEADER_URL = "INFERPLANE_GANG_LEADER_URL"
"""The leader engine's root URL; without it a worker follows http://LEADER_ADDRESS:8000."""
DEFAULT_LEADER_PORT = 8000
LEADER_LOST_SECONDS = 10.0
"""How long a leader seen once may stay silent before its worker gives up."""
POLL_SECONDS = 1.0


class GangError(ValueError):
    """The gang variables do not describe a member."""


@dataclass(frozen=True)
class Member:
    """This engine's place in its gang."""

    index: int
    size: int
    leader_url: str

    @property
    def leader(self) -> bool:
        return self.index == 0


def member_of(environ: Mapping[str, str] = os.environ) -> Member | None:
    """The member these variables describe; None outside a gang (no LWS_WORKER_INDEX)."""
    raw_index = environ.get(WORKER_INDEX)
    if raw_index is None or raw_index == "":
        return None
    try:
        index, size = int(raw_index), int(environ.get(GROUP_SIZE) or "1")
    except ValueError as exc:
        raise GangError(f"{WORKER_INDEX} and {GROUP_SIZE} must be integers") from exc
    if not 0 <= index < size:
        raise GangError(f"{WORKER_INDEX}={index} is not a member of a gang of {size}")
    url = environ.get(LEADER_URL) or ""
    if not url:
        host = environ.get(LEADER_ADDRESS) or ""
        if not host and index > 0:
            raise GangError(f"a worker needs {LEADER_URL} or {LEADER_ADDRESS}")
        url = f"http://{host}:{DEFAULT_LEADER_PORT}" if host else ""
    return Member(index=index, size=size, leader_url=url.rstrip("/"))


@dataclass
class _Following:
    """What the worker knows of its leader."""

    started: float
    seen: float | None = None
    """When the leader last answered /health with 200 (monotonic)."""
    lost: bool = False


def serve_worker(
    member: Member,
    *,
    host: str,
    port: int,
    startup_seconds: float = 900.0,
    lost_seconds: float = LEADER_LOST_SECONDS,
    log_level: str = "info",
) -> int:
    """Serve /health and follow the leader until it is lost (returns 1) or SIGTERM (0)."""
    following = _Following(started=time.monotonic())

    async def health(request: Request) -> JSONResponse:
        body = {"member": member.index, "size": member.size, "leader": member.leader_url,
                "leaderSeen": following.seen is not None}  # fmt: skip
        return JSONResponse(body, status_code=503 if following.lost else 200)

    app = Starlette(routes=[Route("/health", health)])
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off")
    server = uvicorn.Server(config)
    log.info(
        "gang worker %d of %d following %s", member.index, member.size, member.leader_url,
        extra={"member": member.index, "leader": member.leader_url},
    )  # fmt: skip

    async def main() -> None:
        follower = asyncio.create_task(_follow(member, following, startup_seconds, lost_seconds))
        serving = asyncio.create_task(server.serve())
        done, _ = await asyncio.wait({follower, serving}, return_when=asyncio.FIRST_COMPLETED)
        if follower in done:
            server.should_exit = True
            await serving
        else:
            follower.cancel()

    asyncio.run(main())
    return 1 if following.lost else 0


async def _follow(
    member: Member, following: _Following, startup_seconds: float, lost_seconds: float
) -> None:
    """Poll the leader's /health; return once it is lost (or never came up in time)."""
    async with httpx.AsyncClient(timeout=POLL_SECONDS * 2) as client:
        while True:
            now = time.monotonic()
            try:
                answer = await client.get(member.leader_url + "/health")
                if answer.status_code == 200:
                    following.seen = now
            except httpx.HTTPError:
                pass
            if _lost(following, now, startup_seconds, lost_seconds):
                following.lost = True
                log.warning(
                    "gang leader %s lost: worker %d exits so the gang restarts",
                    member.leader_url, member.index, extra={"member": member.index},
                )  # fmt: skip
                return
            await asyncio.sleep(POLL_SECONDS)


def _lost(following: _Following, now: float, startup_seconds: float, lost_seconds: float) -> bool:
    if following.seen is None:
        return now - following.started >= startup_seconds
    return now - following.seen >= lost_seconds
