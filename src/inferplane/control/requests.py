"""Reading a request: the JSON body (bounded), selectors and flags from the query string."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request

from inferplane.api import errors as api_errors
from inferplane.api import selectors
from inferplane.control import errors, paging

MERGE_PATCH = "application/merge-patch+json"
_LIMIT = re.compile(r"[0-9]{1,18}")
"""A page size as digits: ASCII only, and short enough that int() never refuses it."""


async def read_json(request: Request, *, limit: int) -> Any:
    """The parsed body; 413 past `limit` bytes (counted as they arrive), 400 if not JSON."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise errors.bad_request("the request body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"malformed JSON in the request body: {exc}") from exc


def _too_large(limit: int) -> errors.ApiProblem:
    return errors.ApiProblem(
        413, "RequestEntityTooLarge", f"the request body is larger than the limit of {limit} bytes"
    )


def check_patch_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (MERGE_PATCH, "application/json", ""):
        raise errors.ApiProblem(
            415,
            "UnsupportedMediaType",
            f"PATCH with {content_type!r} is not supported; send {MERGE_PATCH!r}",
        )


def is_dry_run(request: Request) -> bool:
    value = request.query_params.get("dryRun")
    if value is None:
        return False
    if value != "All":
        raise errors.bad_request(
            f"dryRun={value!r} is not supported; use dryRun=All",
            causes=[errors.Cause("dryRun", "must be All")],
        )
    return True


@dataclass(frozen=True)
class Filters:
    """The label and field selectors of a list or watch, parsed once."""

    labels: selectors.Selector | None
    fields: selectors.FieldSelector | None

    @property
    def filtering(self) -> bool:
        return self.labels is not None or self.fields is not None

    def matches(self, obj: dict[str, Any]) -> bool:
        if self.labels and not self.labels.matches(obj["metadata"].get("labels", {})):
            return False
        return not self.fields or self.fields.matches(obj)


def filters(request: Request) -> Filters:
    label_text = request.query_params.get("labelSelector") or ""
    field_text = request.query_params.get("fieldSelector") or ""
    try:
        labels = selectors.parse_label_selector(label_text) if label_text else None
    except api_errors.SelectorError as exc:
        raise errors.bad_request(
            f"invalid labelSelector: {exc}", causes=[errors.Cause("labelSelector", str(exc))]
        ) from exc
    try:
        fields = selectors.parse_field_selector(field_text) if field_text else None
    except api_errors.SelectorError as exc:
        raise errors.bad_request(
            f"invalid fieldSelector: {exc}", causes=[errors.Cause("fieldSelector", str(exc))]
        ) from exc
    return Filters(labels, fields)


def int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise errors.bad_request(
            f"{name}={value!r} is not a non-negative integer",
            causes=[errors.Cause(name, "must be a non-negative integer")],
        )
    return int(value)


def bool_param(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("true", "1", "yes")


def page_window(request: Request) -> paging.Window:
    """`limit` and `continue` of a list: a positive page size, and where the last page ended."""
    limit_text = request.query_params.get("limit")
    limit = None
    if limit_text:  # empty, as absent: no limit
        if not _LIMIT.fullmatch(limit_text) or int(limit_text) == 0:
            raise errors.bad_request(
                f"limit={limit_text!r} is not a positive integer",
                causes=[errors.Cause("limit", "must be a positive integer")],
            )
        limit = int(limit_text)
    token = request.query_params.get("continue")
    if not token:
        return paging.Window(limit)
    try:
        return paging.Window(limit, paging.decode(token))
    except paging.BadToken as exc:
        raise errors.bad_request(
            f"invalid continue token: {exc}; list again without it",
            causes=[errors.Cause("continue", str(exc))],
        ) from exc
