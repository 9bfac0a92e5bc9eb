"""Our JSON schema of a LeaderWorkerSet, for the fields the kubernetes runtime renders.

This is our own transcription, not a copy: it was written by reading the openAPIV3Schema of
the LeaderWorkerSet CRD in kubernetes-sigs/lws at tag v0.10.0 (commit
2161f38ff333f9e24d3c44adef7cd5d9787cac00), file
config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml, version v1. No PyPI or npm
package ships that CRD. It keeps the CRD's required fields, types, bounds, enums and defaults
of `spec` and `spec.leaderWorkerTemplate` (and closes them to unknown fields, as the API
server's pruning would drop them silently); the leader and worker templates are pod
templates, which the render tests check against Kubernetes' own PodTemplateSpec schema
(kubernetes-validate) instead of transcribing the CRD's copy of it.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

LWS_VERSION = "v0.10.0"

_INT32 = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
_INT_OR_STRING = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
_TEMPLATE_METADATA = {
    "type": "object",
    "properties": {
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "name": {"type": "string"},
        "namespace": {"type": "string"},
    },
    "additionalProperties": False,
}
_POD_TEMPLATE = {
    "type": "object",
    "properties": {"metadata": _TEMPLATE_METADATA, "spec": {"type": "object"}},
    "additionalProperties": False,
}

LEADER_WORKER_SET: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "leaderworkerset.x-k8s.io/v1"},
        "kind": {"const": "LeaderWorkerSet"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "maxLength": 63,
                         "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["leaderWorkerTemplate"],
            "additionalProperties": False,
            "properties": {
                "replicas": {**_INT32, "minimum": 0, "maximum": 1_000_000, "default": 1},
                "startupPolicy": {"type": "string", "enum": ["LeaderCreated", "LeaderReady"],
                                  "default": "LeaderCreated"},
                "networkConfig": {
                    "type": "object",
                    "required": ["subdomainPolicy"],
                    "properties": {"subdomainPolicy": {"type": "string",
                                                       "enum": ["Shared", "UniquePerReplica"]}},
                },
                "rolloutStrategy": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "type": {"type": "string", "enum": ["RollingUpdate"],
                                 "default": "RollingUpdate"},
                        "rollingUpdateConfiguration": {
                            "type": "object",
                            "properties": {"maxSurge": _INT_OR_STRING,
                                           "maxUnavailable": _INT_OR_STRING,
                                           "partition": _INT32},
                        },
                    },
                },
                "leaderWorkerTemplate": {
                    "type": "object",
                    "required": ["workerTemplate"],
                    "additionalProperties": False,
                    "properties": {
                        "size": {**_INT32, "default": 1},
                        "restartPolicy": {
                            "type": "string",
                            "enum": ["Default", "RecreateGroupOnPodRestart",
                                     "RecreateGroupAfterStart", "None"],
                            "default": "RecreateGroupOnPodRestart",
                        },
                        "leaderTemplate": _POD_TEMPLATE,
                        "workerTemplate": _POD_TEMPLATE,
                        "subGroupPolicy": {
                            "type": "object",
                            "properties": {
                                "subGroupPolicyType": {"type": "string",
                                                       "enum": ["LeaderWorker", "LeaderExcluded"]},
                                "subGroupSize": _INT32,
                            },
                        },
                        "volumeClaimTemplates": {"type": "array", "items": {"type": "object"}},
                        "persistentVolumeClaimRetentionPolicy": {
                            "type": "object",
                            "properties": {"whenDeleted": {"type": "string"},
                                           "whenScaled": {"type": "string"}},
                        },
                    },
                },
            },
        },
        "status": {"type": "object"},
    },
}  # fmt: skip


def validate(manifest: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError where `manifest` breaks the schema."""
    jsonschema.Draft202012Validator(LEADER_WORKER_SET).validate(manifest)


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(LEADER_WORKER_SET)


GOOD = {
    "apiVersion": "leaderworkerset.x-k8s.io/v1",
    "kind": "LeaderWorkerSet",
    "metadata": {"name": "x"},
    "spec": {"leaderWorkerTemplate": {"size": 2, "workerTemplate": {"spec": {}}}},
}


def test_the_schema_takes_a_minimal_leader_worker_set() -> None:
    errors = list(jsonschema.Draft202012Validator(LEADER_WORKER_SET).iter_errors(GOOD))
    assert errors == [], [e.message for e in errors]


@pytest.mark.parametrize(
    "spec",
    [
        {},  # no leaderWorkerTemplate
        {"leaderWorkerTemplate": {"size": 2}},  # no workerTemplate
        {"leaderWorkerTemplate": {"workerTemplate": {}, "restartPolicy": "Always"}},
        {"leaderWorkerTemplate": {"workerTemplate": {}, "size": "2"}},
        {"leaderWorkerTemplate": {"workerTemplate": {}}, "startupPolicy": "Eventually"},
        {"leaderWorkerTemplate": {"workerTemplate": {}}, "replicas": -1},
        {"leaderWorkerTemplate": {"workerTemplate": {}}, "replica": 1},  # a typo
    ],
)
def test_the_schema_refuses_what_the_crd_refuses(spec: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate({**GOOD, "spec": spec})
