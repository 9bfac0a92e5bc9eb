"""Ships replica logs to the readers waiting on the control plane (control/logrelay.py).

The agent keeps one long poll open asking which logs are wanted; for each new session it
starts a shipper thread that reads the engine's log through the runtime and pushes it in
chunks, following new lines when asked, until the reader goes. Every connection is outbound.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from inferplane import client as api_client
from inferplane import logs
from inferplane.agent.runtime import base
from inferplane.backoff import Backoff

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
POLL_SECONDS = 20
FOLLOW_SECONDS = 0.25
RETRY = Backoff(base=0.5, cap=5.0)

ReadLog = Callable[..., base.LogChunk]
"""`read_log(name, offset=, limit=)`, as the runtime offers it."""


def tail_offset(read_log: ReadLog, name: str, lines: int) -> int:
    """Where the last `lines` lines of the log begin (a final newline ends a line)."""
    size = read_log(name, offset=0, limit=0).size
    if lines <= 0:
        return size
    position, seen = size, 0
    while position > 0:
        start = max(position - CHUNK_BYTES, 0)
        data = read_log(name, offset=start, limit=position - start).data
        for i in range(len(data) - 1, -1, -1):
            if data[i] == 0x0A and start + i != size - 1:
                seen += 1
                if seen == lines:
                    return start + i + 1
        position = start
    return 0


class LogShipper:
    """The long poll and the shipper threads of one agent."""

    def __init__(self, cluster: str, read_log: ReadLog) -> None:
        self.cluster = cluster
        self._read_log = read_log
        self._serving: dict[str, threading.Event] = {}

    def run(self, make_client: Callable[[], api_client.Client], stop: threading.Event) -> None:
        failures = 0
        with make_client() as client:
            while not stop.is_set():
                try:
                    wanted = client.log_requests(
                        self.cluster, known=sorted(self._serving), timeout_seconds=POLL_SECONDS
                    )
                    failures = 0
                except api_client.ClientError as exc:
                    failures += 1
                    if not isinstance(exc, api_client.ConnectionFailed):
                        logs.event(log, "log requests refused", level=logging.WARNING, error=exc)
                    stop.wait(RETRY.delay(failures))
                    continue
                self._serve(wanted, make_client)
        for done in self._serving.values():
            done.set()

    def _serve(self, wanted: list[dict[str, Any]], make_client: Callable[[], Any]) -> None:
        ids = {str(request["id"]) for request in wanted}
        for session in set(self._serving) - ids:
            self._serving.pop(session).set()
        for request in wanted:
            session = str(request["id"])
            if session in self._serving:
                continue
            done = threading.Event()
            self._serving[session] = done
            thread = threading.Thread(
                target=self.ship,
                args=(request, make_client, done),
                name=f"log-{request['namespace']}/{request['name']}",
                daemon=True,
            )
            thread.start()

    def ship(
        self,
        request: dict[str, Any],
        make_client: Callable[[], api_client.Client],
        done: threading.Event,
    ) -> None:
        """Push one session's log until its end (or, following, until the reader goes)."""
        namespace, name = str(request["namespace"]), str(request["name"])
        session, follow = str(request["id"]), bool(request.get("follow"))
        key = f"{namespace}/{name}"
        with make_client() as client:

            def push(data: bytes, *, eof: bool = False) -> None:
                client.push_log(namespace, name, session=session, data=data, eof=eof)

            try:
                self._ship(key, request.get("tailLines"), follow, push, done)
            except base.UnknownEngine:
                push(f"no log of replica {key} on cluster {self.cluster}\n".encode(), eof=True)
            except api_client.NotFound:
                pass  # the reader has gone
            except api_client.ClientError as exc:
                logs.event(log, "log shipping stopped", replica=key, error=exc)
            finally:
                done.set()

    def _ship(
        self,
        key: str,
        tail_lines: Any,
        follow: bool,
        push: Callable[..., None],
        done: threading.Event,
    ) -> None:
        offset = 0
        if isinstance(tail_lines, int):
            offset = tail_offset(self._read_log, key, tail_lines)
        while not done.is_set():
            chunk = self._read_log(key, offset=offset, limit=CHUNK_BYTES)
            if chunk.data:
                push(chunk.data)
                offset = chunk.offset
                continue
            if chunk.size < offset:
                offset = 0  # the log was truncated or replaced: start again
                continue
            if not follow:
                push(b"", eof=True)
                return
            done.wait(FOLLOW_SECONDS)
