"""Usage goes back to the control plane as status patches, and comes back as a seed."""

from __future__ import annotations

from datetime import UTC, datetime

from inferplane.gateway import table as table_mod
from inferplane.gateway import usage
from inferplane.policy import quotas

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC).timestamp()
KEY = {
    "kind": "ApiKey",
    "metadata": {"name": "k", "namespace": "team"},
    "spec": {"tokenHash": "a" * 64, "budget": {"cost": 5.0}},
}
QUOTA = {
    "kind": "Quota",
    "metadata": {"name": "q", "namespace": "team"},
    "spec": {"rateLimits": {"requestsPerMinute": 100}},
}


def _table(*objs: dict[str, object]) -> table_mod.Table:
    objects = table_mod.Objects()
    for obj in objs:
        objects.apply(str(obj["kind"]), "ADDED", dict(obj))
    return table_mod.build(objects)


def test_touched_subjects_become_status_patches_once() -> None:
    table = _table(KEY, QUOTA)
    ledger, reports = quotas.Ledger(), usage.UsageReports()
    checks = (("key team/k", table.keys["a" * 64].limits), *table.quotas["team"])
    ledger.record(checks, NOW, 120, 0.25)
    reports.touched(checks, NOW)
    sent = usage.patches(reports, ledger, table, NOW)
    assert [(kind, ns, name) for kind, ns, name, _ in sent] == [
        ("ApiKey", "team", "k"),
        ("Quota", "team", "q"),
    ]
    key_status = sent[0][3]
    assert key_status["tokensUsed"] == 120 and key_status["costUsed"] == 0.25
    assert key_status["periodStart"] == "2026-11-24T00:00:00Z"
    assert key_status["lastUsedTime"] == "2026-11-24T12:00:00Z"
    assert "lastUsedTime" not in sent[1][3]
    assert usage.patches(reports, ledger, table, NOW) == []


def test_a_new_gateway_starts_from_the_reported_usage() -> None:
    reported = {
        **KEY,
        "status": {"tokensUsed": 500, "costUsed": 4.5, "periodStart": "2026-11-24T00:00:00Z"},
    }
    table = _table(reported)
    ledger = quotas.Ledger()
    usage.seed(ledger, table)
    limits = table.keys["a" * 64].limits
    assert ledger.usage("key team/k", limits, NOW) == (500, 4.5)
    ledger.record((("key team/k", limits),), NOW, 100, 1.0)
    assert ledger.admit((("key team/k", limits),), NOW) is not None  # $5.50 of $5 spent
