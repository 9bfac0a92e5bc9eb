"""Paged lists: pages cover the list once, in (namespace, name) order, and tokens are checked."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferplane.control import paging


def obj(namespace: str, name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name}}


def keys(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items]


def walk(items: list[dict[str, Any]], limit: int, *, version: int) -> list[paging.Page]:
    pages = [paging.page(items, paging.Window(limit), version=version)]
    while pages[-1].continue_token is not None:
        after = paging.decode(pages[-1].continue_token)
        pages.append(paging.page(items, paging.Window(limit, after), version=version + 1))
    return pages


def test_without_a_limit_everything_comes_at_once_with_no_token() -> None:
    listed = paging.page([obj("b", "x"), obj("a", "y")], paging.Window(), version=7)
    assert keys(listed.items) == [("a", "y"), ("b", "x")]
    assert listed.metadata() == {"resourceVersion": "7"}


def test_a_limit_of_exactly_the_size_leaves_nothing_to_continue() -> None:
    listed = paging.page([obj("a", "x"), obj("a", "y")], paging.Window(2), version=7)
    assert listed.continue_token is None


def test_every_page_reports_the_first_pages_version() -> None:
    items = [obj("a", f"m{i}") for i in range(5)]
    pages = walk(items, 2, version=40)
    assert [len(p.items) for p in pages] == [2, 2, 1]
    assert {p.metadata()["resourceVersion"] for p in pages} == {"40"}
    assert "continue" in pages[0].metadata() and "continue" not in pages[-1].metadata()


def test_a_page_resumes_after_the_last_key_even_when_the_list_changed() -> None:
    first = paging.page(
        [obj("a", "m1"), obj("a", "m2"), obj("a", "m4")], paging.Window(2), version=3
    )
    assert first.continue_token is not None
    after = paging.decode(first.continue_token)
    # m2 was deleted and m3 created since: the next page starts after m2 all the same.
    changed = [obj("a", "m1"), obj("a", "m3"), obj("a", "m4")]
    second = paging.page(changed, paging.Window(2, after), version=9)
    assert keys(second.items) == [("a", "m3"), ("a", "m4")]
    assert second.resource_version == 3


def test_the_order_is_python_s_not_the_store_s() -> None:
    # A locale collation (PostgreSQL's default) sorts "ab" before "a-c"; the pages must not.
    pages = walk([obj("", "ab"), obj("", "a-c"), obj("", "b")], 1, version=1)
    assert [k for p in pages for k in keys(p.items)] == [("", "a-c"), ("", "ab"), ("", "b")]


@given(
    names=st.sets(
        st.tuples(
            st.sampled_from(["", "a", "a-b", "ab"]), st.from_regex(r"[a-c-]{1,3}", fullmatch=True)
        )
    ),
    limit=st.integers(min_value=1, max_value=5),
)
def test_pages_cover_the_list_once_in_order(names: set[tuple[str, str]], limit: int) -> None:
    items = [obj(ns, name) for ns, name in names]
    pages = walk(items, limit, version=1)
    assert [k for p in pages for k in keys(p.items)] == sorted(names)
    assert all(len(p.items) <= limit for p in pages)


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        "é",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"ns": "a", "name": "x"}').decode(),
        base64.urlsafe_b64encode(b'{"ns": "a", "name": "", "rv": 1}').decode(),
        base64.urlsafe_b64encode(b'{"ns": "a", "name": "x", "rv": -1}').decode(),
        base64.urlsafe_b64encode(b'{"ns": "a", "name": "x", "rv": true}').decode(),
        base64.urlsafe_b64encode(b'{"ns": 1, "name": "x", "rv": 1}').decode(),
    ],
)
def test_a_token_this_server_did_not_issue_is_refused(token: str) -> None:
    with pytest.raises(paging.BadToken):
        paging.decode(token)


def test_a_token_round_trips() -> None:
    mark = paging.Continue("team-a", "chat", 12)
    assert paging.decode(paging.encode(mark)) == mark
