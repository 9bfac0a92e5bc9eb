"""Multi-document YAML in and out, with errors that say which document and where."""

from __future__ import annotations

import textwrap

import pytest

from inferplane.api import errors, validation, yamlio

from . import samples

STREAM = textwrap.dedent(
    """\
    apiVersion: inferplane.dev/v1
    kind: Model
    metadata:
      name: llama
    spec:
      versions:
      - name: v1
        source: hf://meta-llama/Llama-3.1-8B
    ---
    # only a comment: an empty document, skipped
    ---
    apiVersion: inferplane.dev/v1
    kind: Deployment
    metadata: {name: chat, labels: {canary: "on"}}
    spec: {model: llama}
    ---
    """
)


def test_load_skips_empty_documents() -> None:
    docs = yamlio.load_documents(STREAM, "app.yaml")
    assert [d["kind"] for d in docs] == ["Model", "Deployment"]


def test_yaml_12_booleans_and_timestamps() -> None:
    text = "a: on\nb: yes\nc: true\nd: False\ne: 2024-01-01T00:00:00Z\nf: 1.0\n"
    (doc,) = yamlio.load_documents(text, "-")
    assert doc == {
        "a": "on",
        "b": "yes",
        "c": True,
        "d": False,
        "e": "2024-01-01T00:00:00Z",
        "f": 1.0,
    }


def test_unquoted_on_label_stays_a_string() -> None:
    (doc,) = yamlio.load_documents(
        "apiVersion: inferplane.dev/v1\nkind: Cluster\nmetadata: {name: a, labels: {gpu: on}}\n",
        "-",
    )
    assert validation.parse_object(doc).metadata.labels == {"gpu": "on"}


@pytest.mark.parametrize(
    ("text", "index", "where"),
    [
        ("a: [1, 2\n", 0, "line 2"),
        ("a: 1\n---\nb: {\n", 1, "line 4"),
        ("a: 1\n---\n---\n- x\n", 2, "a list"),
        ("a: 1\n---\njust text\n", 1, "a str"),
        ("a: 1\n---\nb: 1\nb: 2\n", 1, "duplicate key 'b'"),
        ("a: 1\n  b: 2\n", 0, "line 2, column 4"),
    ],
)
def test_document_error_names_index_and_position(text: str, index: int, where: str) -> None:
    with pytest.raises(errors.DocumentError) as caught:
        yamlio.load_documents(text, "app.yaml")
    failure = caught.value
    assert (failure.source, failure.index) == ("app.yaml", index)
    assert where in failure.message
    assert str(failure).startswith(f"app.yaml: document {index}: ")


def test_dump_orders_top_level_keys_and_uses_block_style() -> None:
    obj = {"status": {}, "spec": {"b": 1, "a": [1, 2]}, "kind": "Pool", "x": 1, "apiVersion": "v"}
    text = yamlio.dump_documents([obj])
    assert (
        text == "apiVersion: v\nkind: Pool\nspec:\n  b: 1\n  a:\n  - 1\n  - 2\nstatus: {}\nx: 1\n"
    )


def test_dump_writes_multiline_strings_as_blocks() -> None:
    text = yamlio.dump_documents([{"message": "line one\nline two\n"}])
    assert text == "message: |\n  line one\n  line two\n"


def test_round_trip_of_every_kind() -> None:
    objs = [validation.parse_object(samples.manifest(k)).to_dict() for k in sorted(samples.MINIMAL)]
    text = yamlio.dump_documents(objs)
    assert text.count("\n---\n") == len(objs) - 1
    loaded = yamlio.load_documents(text, "dump.yaml")
    assert loaded == objs
    assert [validation.parse_object(d).to_dict() for d in loaded] == objs


def test_parse_object_is_exported_here() -> None:
    assert yamlio.parse_object is validation.parse_object
