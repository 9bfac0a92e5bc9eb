"""Reading and writing manifests: multi-document YAML in, objects out, and back.

YAML is read with YAML 1.2's notion of booleans (only true/false: `yes`, `on` and `no` stay
strings, so a label value `on` is not turned into a boolean), timestamps are left as strings
for the schemas to parse, and a key given twice in one mapping is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from inferplane.api.errors import DocumentError
from inferplane.api.validation import parse_object

__all__ = ["DocumentError", "dump_documents", "load_documents", "parse_object"]

TOP_LEVEL_ORDER = ("apiVersion", "kind", "metadata", "spec", "status")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, no timestamp parsing and no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_DROPPED_TAGS = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp"}
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as literal blocks and never uses aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def load_documents(text: str, source: str) -> list[dict[str, Any]]:
    """Every non-empty document of a YAML stream, each a mapping.

    Raises DocumentError(source, index, message) for malformed YAML (the message has the line
    and column) or a document that is not a mapping; index counts every document from 0.
    """
    return [doc for _, doc in load_indexed(text, source)]


def load_indexed(text: str, source: str) -> list[tuple[int, dict[str, Any]]]:
    """Like load_documents, with each document's index in the stream (empty ones counted),
    so that errors found later name the same position DocumentError would."""
    docs: list[tuple[int, dict[str, Any]]] = []
    for index, doc in _documents(text, source):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise DocumentError(source, index, f"expected a mapping, got {_yaml_type(doc)}")
        docs.append((index, doc))
    return docs


def _documents(text: str, source: str) -> Iterator[tuple[int, Any]]:
    loader = _Loader(text)
    index = 0
    try:
        while loader.check_data():
            yield index, loader.get_data()
            index += 1
    except yaml.YAMLError as exc:
        raise DocumentError(source, index, _describe(exc)) from exc
    finally:
        loader.dispose()


def _describe(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or exc.context or "invalid YAML"
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(exc)


def _yaml_type(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__} ({value!r:.40})"


def dump_documents(objs: list[dict[str, Any]]) -> str:
    """A multi-document YAML stream, block style, top-level keys in the natural order."""
    return yaml.dump_all(
        [_ordered(obj) for obj in objs],
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=len(objs) > 1,
    )


def _ordered(obj: dict[str, Any]) -> dict[str, Any]:
    first = {key: obj[key] for key in TOP_LEVEL_ORDER if key in obj}
    return first | {key: value for key, value in obj.items() if key not in first}
