"""Audit policy (levels, first match), Secret redaction, and the batching writer."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inferplane import store as store_pkg
from inferplane.control import audit, auditlog, errors
from inferplane.control.audit import Level, Policy, Rule
from inferplane.store.base import AuditRecord


def test_the_first_matching_rule_sets_the_level_else_the_default() -> None:
    policy = Policy(
        Level.METADATA,
        (
            Rule(Level.NONE, frozenset({"events"})),
            Rule(Level.REQUEST, frozenset({"secrets", "apikeys"}), frozenset({"create"})),
            Rule(Level.METADATA, frozenset({"secrets"})),
            Rule(Level.REQUEST),
        ),
    )
    assert policy.level_for("events", "create") is Level.NONE
    assert policy.level_for("secrets", "create") is Level.REQUEST
    assert policy.level_for("secrets", "delete") is Level.METADATA, "first match, not best"
    assert policy.level_for("deployments", "patch") is Level.REQUEST, "a rule for every kind"
    assert Policy(Level.NONE).level_for("deployments", "create") is Level.NONE


def test_a_policy_file_names_kinds_any_way_the_registry_does(tmp_path: Path) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text(
        "rules:\n"
        "  - {level: None, kinds: [Event]}\n"
        "  - {level: Request, kinds: [secret, deploy], verbs: [create, patch]}\n"
    )
    policy = audit.load_policy(path, default=Level.METADATA)
    assert policy.rules == (
        Rule(Level.NONE, frozenset({"events"})),
        Rule(Level.REQUEST, frozenset({"secrets", "deployments"}), frozenset({"create", "patch"})),
    )
    assert audit.load_policy(None, default=Level.REQUEST) == Policy(Level.REQUEST)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("rules:\n  - {level: Everything}\n", "rules.0.level"),
        ("rules:\n  - {level: None, kinds: [widgets]}\n", "rules.0.kinds"),
        ("rules:\n  - {level: None, verbs: [explode]}\n", "rules.0.verbs.0"),
        ("rules:\n  - {level: None, users: [x]}\n", "rules.0.users"),
        ("rule: []\n", "rules"),
        ("rules: [\n", "audit.yaml"),
    ],
)
def test_a_bad_policy_file_is_refused_naming_the_field(
    tmp_path: Path, text: str, named: str
) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text(text)
    with pytest.raises(audit.PolicyError, match=named.replace(".", r"\.")):
        audit.load_policy(path, default=Level.METADATA)


def test_a_secret_body_keeps_its_keys_and_never_a_value() -> None:
    body = {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "team-a",
            "labels": {"app": "chat"},
            "annotations": {"note": "hunter2-in-annotation"},
        },
        "spec": {
            "type": "Opaque",
            "data": {"password": "hunter2", "gone": None},
            "encryptedData": {"password": "v1:k:cipher"},
            "datas": {"typo": "hunter2-typo"},
        },
        "status": {"keys": {"password": 7}, "note": "hunter2-status"},
    }
    kept = audit.redact("Secret", body)
    assert "hunter2" not in json.dumps(kept) and "cipher" not in json.dumps(kept)
    assert kept["spec"]["data"] == {"password": audit.REDACTED, "gone": None}
    assert kept["spec"]["type"] == "Opaque"
    assert kept["metadata"]["labels"] == {"app": "chat"}
    assert kept["metadata"]["annotations"] == {"note": audit.REDACTED}
    for odd in ("not an object", {"spec": "hunter2"}, {"spec": {"data": ["hunter2"]}}):
        assert "hunter2" not in json.dumps(audit.redact("Secret", odd))


def test_an_apikey_body_keeps_everything_but_its_token_hash() -> None:
    body = {"metadata": {"name": "ci"}, "spec": {"role": "viewer", "tokenHash": "ab" * 32}}
    kept = audit.redact("ApiKey", body)
    assert kept == {
        "metadata": {"name": "ci"},
        "spec": {"role": "viewer", "tokenHash": "[redacted]"},
    }
    assert body["spec"]["tokenHash"] == "ab" * 32, "the request itself is untouched"
    assert audit.redact("ApiKey", {"spec": {"role": "viewer"}}) == {"spec": {"role": "viewer"}}


def test_other_kinds_are_kept_as_sent() -> None:
    body = {"spec": {"replicas": 2}}
    assert audit.redact("Deployment", body) is body


def record(i: int) -> AuditRecord:
    return AuditRecord(
        time=datetime(2030, 1, 1, tzinfo=UTC),
        request_id=f"r{i}",
        level="Metadata",
        user="anonymous",
        source="127.0.0.1",
        verb="create",
        kind="deployments",
        namespace="ns",
        name=f"d{i}",
        subresource="",
        path="/apis/inferplane.dev/v1/namespaces/ns/deployments",
        code=401,
    )


WRITE_WAIT_SECONDS = 30.0
"""How long a test waits for the writer to reach the store before failing: a bound, not a claim
about speed (the writers here have an hour-long interval, so only a full batch wakes them)."""


class WatchedStore:
    """The store behind the writer, failing while `fail` holds, and saying when it was called:
    the tests wait on these events, never on a guess of how long the writer's thread takes."""

    def __init__(self, store: store_pkg.Store, *, fail: bool) -> None:
        self.store = store
        self.fail = fail
        self.tried = threading.Event()
        self.written = threading.Event()

    def append_audit(self, records: list[AuditRecord]) -> None:
        self.tried.set()
        if self.fail:
            raise RuntimeError("store down")
        self.store.append_audit(records)
        self.written.set()


async def reached(event: threading.Event) -> bool:
    """Wait for an event set in the writer's thread without blocking the loop."""
    return await asyncio.to_thread(event.wait, WRITE_WAIT_SECONDS)


def test_the_writer_flushes_in_batches_and_keeps_records_while_the_store_fails(
    tmp_path: Path,
) -> None:
    opened = store_pkg.open_store(store_pkg.sqlite_url(tmp_path))
    flaky = WatchedStore(opened, fail=True)

    async def scenario() -> None:
        writer = auditlog.AuditWriter(batch=3, interval=3600, capacity=4)
        task = asyncio.create_task(writer.run(flaky))  # type: ignore[arg-type]
        for i in range(3):
            writer.add(record(i))
        assert await reached(flaky.tried), "a full batch wakes the writer long before its interval"
        # Waits for the writer's failed attempt to put its batch back (one flush at a time),
        # then fails once more itself: the three records are queued again, none in flight.
        await writer.flush()
        writer.add(record(3))
        writer.add(record(4))  # over capacity while the store is down: dropped
        assert writer.dropped == 1
        flaky.fail = False
        await writer.flush()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert writer.dropped == 0, "the drop was logged once the store took records again"

    asyncio.run(scenario())
    assert [r.request_id for r in opened.list_audit()] == ["r0", "r1", "r2", "r3"]
    opened.close()


def test_a_batch_is_written_without_waiting_for_the_interval(tmp_path: Path) -> None:
    opened = store_pkg.open_store(store_pkg.sqlite_url(tmp_path))
    watched = WatchedStore(opened, fail=False)

    async def scenario() -> None:
        writer = auditlog.AuditWriter(batch=2, interval=3600)
        task = asyncio.create_task(writer.run(watched))  # type: ignore[arg-type]
        writer.add(record(0))
        writer.add(record(1))
        assert await reached(watched.written), "the full batch was written"
        task.cancel()

    asyncio.run(scenario())
    assert len(opened.list_audit()) == 2
    opened.close()


class NullStore:
    def append_audit(self, records: list[AuditRecord]) -> None:
        pass


@pytest.mark.parametrize("steps", [0, 1, 2, 3])
def test_a_cancelled_writer_stops_even_as_a_batch_falls_due(steps: int) -> None:
    """Shutdown cancels the writer and awaits it: a cancel landing with a full batch must end it
    (asyncio.wait_for on Python 3.11 swallowed it, and the writer ran on)."""

    async def scenario() -> None:
        writer = auditlog.AuditWriter(batch=1, interval=3600)
        task = asyncio.create_task(writer.run(NullStore()))  # type: ignore[arg-type]
        for _ in range(steps):  # let the writer get this far into its wait
            await asyncio.sleep(0)
        writer.add(record(0))  # the batch falls due ...
        task.cancel()  # ... in the same step as the cancel
        done, _ = await asyncio.wait({task}, timeout=WRITE_WAIT_SECONDS)
        assert task in done and task.cancelled(), "the writer ran on after its cancel"

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"kind": "widgets"}, "kind"),
        ({"verb": "create"}, "verb"),
    ],
)
def test_bad_query_parameters_are_400s_naming_them(params: dict[str, str], field: str) -> None:
    with pytest.raises(errors.ApiProblem) as raised:
        auditlog.parse_query(params)
    assert raised.value.code == 400
    assert [c.field for c in raised.value.causes] == [field]


def test_a_query_normalizes_kinds_and_times() -> None:
    query = auditlog.parse_query({"kind": "deploy", "since": "2030-01-01T00:00:00Z"})
    assert query.kind == "deployments"
    assert query.since == datetime(2030, 1, 1, tzinfo=UTC)
