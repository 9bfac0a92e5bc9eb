"""Following a kind forever: a watch that reconnects, resumes and relists by itself.

A single watch ends when the server closes it (timeoutSeconds, a restart, a network cut).
`follow` reopens it from the last resourceVersion seen, so nothing is missed or repeated; when
that version has been compacted away (410 Gone) it lists again and carries on from the list,
first yielding a RESYNC event with the full list so the caller can drop what vanished.
Agents, gateways and `inferplane get -w` all want exactly this.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from inferplane import client as api_client
from inferplane.backoff import Backoff

RECONNECT = Backoff(base=0.2, cap=5.0)
"""Delay between reconnects: doubling from 0.2 s to 5 s, reset by any event."""


def follow(
    client: api_client.Client,
    kind: str,
    *,
    namespace: str | None = None,
    resource_version: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    retry: Backoff = RECONNECT,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[api_client.WatchEvent]:
    """Every change of `kind` after `resource_version`, across disconnects, until closed.

    Without a `resource_version` it starts with a RESYNC of the current objects. Errors that
    retrying cannot fix (401, 403, 404, 400) are raised; connection failures are retried.
    """
    version = resource_version
    failures = 0
    while True:
        if not version:
            listing = client.list(
                kind,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
            )
            version = listing.resource_version
            yield _resync(listing)
        stream = client.watch(
            kind,
            namespace=namespace,
            resource_version=version,
            label_selector=label_selector,
            field_selector=field_selector,
        )
        try:
            with stream:
                for event in stream:
                    failures = 0
                    yield event
            failures = 0
        except api_client.Gone:
            version = None  # compacted away: relist
            continue
        except api_client.ConnectionFailed:
            failures += 1
            sleep(retry.delay(failures))
        version = stream.resource_version or version


def _resync(listing: api_client.ObjectList) -> api_client.WatchEvent:
    meta = {"resourceVersion": listing.resource_version}
    return api_client.WatchEvent(type="RESYNC", object={"metadata": meta, "items": listing.items})
