"""Reading the objects a user hands to apply, diff and delete: files, directories and stdin.

A manifest remembers where it came from (``deploy.yaml[2]``: file and 0-based document index)
so that an error about it names the place to fix.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferplane.api import errors as api_errors
from inferplane.api import registry, yamlio
from inferplane.cli import errors

STDIN = "-"
SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Manifest:
    """One object read from a file, with the label errors about it carry."""

    label: str
    object: dict[str, Any]


def sources(paths: list[str], *, recursive: bool) -> Iterator[str]:
    """Every file named, a directory's manifest files sorted by path, or stdin as '-'."""
    for path in paths:
        if path == STDIN or not Path(path).is_dir():
            yield path
            continue
        pattern = "**/*" if recursive else "*"
        found = sorted(p for p in Path(path).glob(pattern) if p.suffix in SUFFIXES and p.is_file())
        yield from (str(p) for p in found)


def read(source: str) -> list[Manifest]:
    """The objects of one source; raises DocumentError (YAML) or OSError (file)."""
    text = sys.stdin.read() if source == STDIN else Path(source).read_text()
    manifests: list[Manifest] = []
    for index, doc in yamlio.load_indexed(text, source):
        manifests.extend(_expand(f"{source}[{index}]", doc))
    return manifests


def _expand(label: str, doc: dict[str, Any]) -> list[Manifest]:
    """A ``List`` (what ``get -o json`` prints) stands for its items."""
    items = doc.get("items")
    if str(doc.get("kind", "")).endswith("List") and isinstance(items, list):
        return [Manifest(f"{label}.items[{i}]", item) for i, item in enumerate(items)]
    return [Manifest(label, doc)]


def in_namespace(obj: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    """The object placed in ``--namespace`` when it names none; refused when it names another."""
    kind = obj.get("kind")
    if not namespace or not kind or not registry.lookup(str(kind)).namespaced:
        return obj
    metadata = obj.get("metadata") or {}
    declared = metadata.get("namespace")
    if declared and declared != namespace:
        raise errors.UsageError(
            f"the object is in namespace {declared!r} but --namespace is {namespace!r}"
        )
    return {**obj, "metadata": {**metadata, "namespace": namespace}}


def each(paths: list[str], *, recursive: bool, action: Callable[[Manifest], None]) -> bool:
    """Run ``action`` on every manifest; report each failure where it happened and go on.

    Returns False when anything failed. Failures that would repeat for every object (the server
    is down, the token is refused) stop at once instead of printing the same error N times.
    """
    ok, seen = True, 0
    for source in sources(paths, recursive=recursive):
        try:
            found = read(source)
        except (api_errors.DocumentError, OSError) as exc:
            errors.report(exc)
            ok = False
            continue
        seen += len(found)
        for manifest in found:
            ok = _attempt(action, manifest) and ok
    if seen == 0 and ok:
        raise errors.UsageError(f"no objects found in {', '.join(paths)}")
    return ok


def _attempt(action: Callable[[Manifest], None], manifest: Manifest) -> bool:
    try:
        action(manifest)
    except errors.FATAL:
        raise
    except errors.EXPECTED as exc:
        errors.report(exc, where=manifest.label)
        return False
    return True
