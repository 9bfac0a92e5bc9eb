"""A deployment's replica template, its hash, and new Replica objects made from it.

The template is everything a replica copies from its deployment (resolved model version,
engine, resources, serving, priority). Its hash labels each replica, so the deployment
controller tells replicas of the current spec from older ones without comparing specs.
"""

from __future__ import annotations

import hashlib
import random
import string
from typing import Any

import orjson

from inferplane.api import deployments, meta, models, replicas, wellknown

SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
SUFFIX_LENGTH = 5
HASH_LENGTH = 10


def replica_spec(
    deployment: deployments.Deployment, model: models.Model, version: models.ModelVersion
) -> replicas.ReplicaSpec:
    """What every replica of the deployment runs, unbound."""
    spec = deployment.spec
    return replicas.ReplicaSpec(
        deployment=deployment.metadata.name,
        model=replicas.ResolvedModel(
            name=model.metadata.name,
            version=version.name,
            source=version.source,
            format=version.format,
            revision=version.revision,
        ),
        engine=spec.engine.model_copy(deep=True),
        resources=spec.resources.model_copy(deep=True),
        serving=spec.serving.model_copy(deep=True),
        priority=spec.priority,
    )


def template_hash(spec: replicas.ReplicaSpec) -> str:
    """A short, stable hash of the template: equal specs give equal hashes."""
    data = orjson.dumps(
        spec.model_dump(mode="json", exclude_none=True), option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(data).hexdigest()[:HASH_LENGTH]


def replica_name(deployment: str, *, rng: random.Random) -> str:
    """`{deployment}-{5 random lowercase letters and digits}`, cut to fit a DNS label."""
    suffix = "".join(rng.choices(SUFFIX_ALPHABET, k=SUFFIX_LENGTH))
    head = deployment[: 63 - SUFFIX_LENGTH - 1].rstrip("-")
    return f"{head}-{suffix}"


def new_replica(
    deployment: dict[str, Any],
    spec: replicas.ReplicaSpec,
    *,
    name: str,
    hash_: str,
    replaces: str | None = None,
) -> dict[str, Any]:
    """A Replica of `deployment` (a stored object), owned by it, with both finalizers."""
    owner = deployment["metadata"]
    annotations = {wellknown.REPLACES_ANNOTATION: replaces} if replaces else {}
    replica = replicas.Replica(
        metadata=meta.ObjectMeta(
            name=name,
            namespace=owner.get("namespace") or "default",
            labels={
                wellknown.DEPLOYMENT_LABEL: owner["name"],
                wellknown.TEMPLATE_HASH_LABEL: hash_,
            },
            annotations=annotations,
            finalizers=list(wellknown.REPLICA_FINALIZERS),
            ownerReferences=[
                meta.OwnerReference(
                    kind="Deployment",
                    name=owner["name"],
                    uid=owner["uid"],
                    controller=True,
                    blockOwnerDeletion=True,
                )
            ],
        ),
        spec=spec,
    )
    return replica.to_dict()
