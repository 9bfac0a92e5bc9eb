"""How a replica's Kubernetes objects are named, labelled and annotated.

Every object of one replica shares one name, derived from the replica's namespace/name: a
DNS-1035 label of at most `NAME_MAX` characters that always ends in a hash of the full
identity, so that two replicas whose names only differ in what the slug drops (`a-b/c` and
`a/b-c`) never share objects, and so that the names Kubernetes derives from ours (a
Deployment's pods, a LeaderWorkerSet's StatefulSets and pods) stay within 63 characters.
Label values are sanitized copies, for `kubectl get -l`; the annotations hold the identity
as written.
"""

from __future__ import annotations

import hashlib
import re

MANAGED_BY = "inferplane.dev/managed-by"
MANAGER = "inferplane-agent"
SELECTOR = f"{MANAGED_BY}={MANAGER}"
"""The label selector of everything this runtime creates, watches and adopts."""
INSTANCE = "inferplane.dev/instance"
"""The object name, as a label: exact, so it selects one replica's pods."""
REPLICA = "inferplane.dev/replica"
NAMESPACE = "inferplane.dev/namespace"
DEPLOYMENT = "inferplane.dev/deployment"

REPLICA_NAME = "inferplane.dev/replica-name"
"""Annotation: the replica's namespace/name, exactly as the agent names it."""
FINGERPRINT = "inferplane.dev/fingerprint"
"""Annotation: the fingerprint of the launch the objects run."""
PORT = "inferplane.dev/port"
"""Annotation: the port the engine listens on and its Service serves."""

NAME_MAX = 40
"""Longest object name: a LeaderWorkerSet's worker StatefulSet is NAME-<group>, and its pods
carry a controller-revision-hash label NAME-<group>-<10 characters>, which must fit in 63."""
_HASH = 8
_INVALID_LABEL_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_INVALID_NAME_CHARS = re.compile(r"[^a-z0-9]+")


def object_name(replica: str) -> str:
    """`default/chat-0` -> `default-chat-0-1a2b3c4d`: lowercase letters, digits and '-', a
    letter first, at most NAME_MAX characters, the hash of `replica` last."""
    digest = hashlib.sha256(replica.encode()).hexdigest()[:_HASH]
    slug = _INVALID_NAME_CHARS.sub("-", replica.lower()).strip("-")
    if not slug[:1].isalpha():
        slug = f"r-{slug}"
    slug = slug[: NAME_MAX - _HASH - 1].rstrip("-")
    return f"{slug}-{digest}"


def leader_service(name: str) -> str:
    """The Service of a gang's leader: a LeaderWorkerSet makes a headless Service of its own
    name, so ours takes another."""
    return f"{name}-leader"


def label_value(text: str) -> str:
    """`text` as a label value: at most 63 of letters, digits, '-', '_' and '.', starting and
    ending with a letter or digit ('' when nothing is left)."""
    value = _INVALID_LABEL_CHARS.sub("-", text)[:63]
    return value.strip("-_.")


def split(replica: str) -> tuple[str, str]:
    """The (namespace, name) of an agent's replica name `namespace/name`."""
    namespace, _, name = replica.rpartition("/")
    return namespace, name


def labels(replica: str, *, deployment: str) -> dict[str, str]:
    """The labels of every object (and pod) of `replica`."""
    namespace, name = split(replica)
    return {
        MANAGED_BY: MANAGER,
        INSTANCE: object_name(replica),
        REPLICA: label_value(name),
        NAMESPACE: label_value(namespace),
        DEPLOYMENT: label_value(deployment),
    }
