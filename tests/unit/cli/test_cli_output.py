"""Rendering helpers: durations, tables, columns and error messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from inferplane import client as api_client
from inferplane.api import errors as api_errors
from inferplane.api import registry
from inferplane.cli import columns, errors, output

NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0s"),
        (45, "45s"),
        (119, "119s"),
        (150, "2m30s"),
        (300, "5m"),
        (3 * 60 * 60 - 1, "179m"),
        (5 * 3600 + 20 * 60, "5h20m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (100 * 86400, "100d"),
        (3 * 365 * 86400 + 10 * 86400, "3y10d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_durations_read_like_kubectl(seconds: int, text: str) -> None:
    assert output.human_duration(seconds) == text


def test_age_of_timestamps() -> None:
    assert output.age("2024-12-31T23:59:00Z", NOW) == "60s"
    assert output.age("2024-12-31T23:59:00", NOW) == "60s"
    assert output.age(None, NOW) == "<none>"
    assert output.age("yesterday", NOW) == "<none>"


def test_tables_are_borderless_untruncated_and_take_no_markup() -> None:
    long = "x" * 300
    text = output.Table(["NAME", "MESSAGE"]).render([["a", long], ["[bold]b[/bold]", "short"]])
    assert text.splitlines() == [
        "NAME" + " " * 13 + "MESSAGE",
        "a" + " " * 16 + long,
        "[bold]b[/bold]   short",
    ]


def test_a_table_keeps_its_widths_for_later_rows() -> None:
    table = output.Table(["NAME", "READY"])
    table.render([["a-long-name", "1/1"]])
    assert table.render([["b", "0/1"]], header=False) == "b             0/1\n"


def test_columns_for_replicas_and_unknown_fields() -> None:
    info = registry.lookup("rep")
    replica = {
        "metadata": {"name": "r1", "namespace": "team-a"},
        "spec": {"cluster": "eu-1", "model": {"name": "llama", "version": "v2"}},
        "status": {"phase": "Running", "url": "http://10.0.0.1:8000"},
    }
    headers = columns.headers(info, wide=True, all_namespaces=True)
    cells = columns.row(replica, info, wide=True, all_namespaces=True, now=NOW)
    row = dict(zip(headers, cells, strict=True))
    assert row["NAMESPACE"] == "team-a"
    assert (row["PHASE"], row["CLUSTER"], row["POOL"]) == ("Running", "eu-1", "<none>")
    assert (row["ENDPOINT"], row["MODEL"]) == ("http://10.0.0.1:8000", "llama:v2")


def test_pool_devices_and_service_routes() -> None:
    pool = {"spec": {"devicesPerNode": [{"count": 8, "attributes": {"model": "H100"}}]}}
    assert (
        columns.row(pool, registry.lookup("pool"), wide=False, all_namespaces=False, now=NOW)[3]
        == "8xH100"
    )
    service = {"spec": {"routes": [{"deployment": "v1", "weight": 90}, {"endpoint": "ext"}]}}
    info = registry.lookup("svc")
    row = columns.row(service, info, wide=True, all_namespaces=False, now=NOW)
    assert "v1:90,ext:1" in row


def test_one_cause_fits_the_headline_several_go_below() -> None:
    one = api_client.Invalid(
        422, "Invalid", "x is invalid: spec.a: bad", [api_client.Cause("spec.a", "bad")]
    )
    assert errors.describe(one) == ["spec.a: bad"]
    causes = [api_client.Cause("spec.a", "bad"), api_client.Cause("", "whole object wrong")]
    many = api_client.Invalid(422, "Invalid", 'Deployment "x" is invalid: spec.a: bad; ...', causes)
    assert errors.describe(many) == [
        'Deployment "x" is invalid:',
        "spec.a: bad",
        "whole object wrong",
    ]


def test_document_and_validation_errors() -> None:
    doc = api_errors.DocumentError("d.yaml", 2, "line 3, column 1: oops")
    assert errors.describe(doc) == ["d.yaml[2]: line 3, column 1: oops"]
    causes = [api_errors.Cause("spec.x", "bad"), api_errors.Cause("spec.y", "worse")]
    failure = api_errors.ValidationFailure(causes, kind="Deployment", name="chat")
    assert errors.describe(failure) == [
        'Deployment.inferplane.dev "chat" is invalid:',
        "spec.x: bad",
        "spec.y: worse",
    ]
