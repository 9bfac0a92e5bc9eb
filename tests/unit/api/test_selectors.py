"""Label and field selectors: Kubernetes syntax, Kubernetes meaning, errors that name the term."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferplane.api import errors, selectors
from inferplane.api.selectors import Requirement, Selector

LABELS = {"app": "chat", "tier": "gold", "example.com/gpu": "h100", "empty": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app=chat", True),
        ("app==chat", True),
        ("app = chat", True),
        ("app=other", False),
        ("app!=other", True),
        ("app!=chat", False),
        ("missing!=x", True),
        ("tier in (gold,silver)", True),
        ("tier in (silver)", False),
        ("tier notin (silver, bronze)", True),
        ("missing notin (x)", True),
        ("tier notin (gold)", False),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("! app", False),
        ("example.com/gpu=h100", True),
        ("empty=", True),
        ("app=chat,tier in (gold),!legacy,example.com/gpu", True),
        ("app=chat,tier=silver", False),
    ],
)
def test_label_selector_matches(text: str, expected: bool) -> None:
    assert selectors.parse_label_selector(text).matches(LABELS) is expected


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("app=chat,,tier=gold", ""),
        ("app=chat,", ""),
        ("tier in ()", "tier in ()"),
        ("tier in (a", ""),
        ("tier in a)", ""),
        ("app=chat,bad key=x", "bad key=x"),
        ("Bad_/x=y", "Bad_/x=y"),
        ("app=bad value!", "app=bad value!"),
        ("app in ((a))", ""),
    ],
)
def test_label_selector_errors_name_the_term(text: str, term: str) -> None:
    with pytest.raises(errors.SelectorError) as caught:
        selectors.parse_label_selector(text)
    assert isinstance(caught.value, ValueError)
    assert repr(term or text) in str(caught.value)


def test_selector_string_form_is_canonical() -> None:
    text = "tier in (silver,gold),app=chat,!legacy,gpu,zone notin (b)"
    assert str(selectors.parse_label_selector(text)) == (
        "tier in (gold,silver),app=chat,!legacy,gpu,zone!=b"
    )


_names = st.text(alphabet="abcxyz019", min_size=1, max_size=6)
_keys = st.one_of(_names, st.builds(lambda p, n: f"{p}.io/{n}", _names, _names))
_values = st.one_of(st.just(""), _names)
_requirements = st.one_of(
    st.builds(Requirement, _keys, st.sampled_from(["Exists", "DoesNotExist"])),
    st.builds(
        Requirement,
        _keys,
        st.sampled_from(["In", "NotIn"]),
        st.frozensets(_names, min_size=1, max_size=3),
    ),
    st.builds(lambda k, v: Requirement(k, "In", frozenset([v])), _keys, _values),
)
_selectors = st.builds(Selector, st.lists(_requirements, max_size=4).map(tuple))
_label_sets = st.dictionaries(_keys, _values, max_size=5)


@given(_selectors)
def test_selector_round_trips_through_its_string(selector: Selector) -> None:
    assert selectors.parse_label_selector(str(selector)) == selector


@given(_requirements, _label_sets)
def test_requirement_semantics(req: Requirement, labels: dict[str, str]) -> None:
    present = req.key in labels
    expected = {
        "Exists": present,
        "DoesNotExist": not present,
        "In": present and labels.get(req.key) in req.values,
        "NotIn": not present or labels[req.key] not in req.values,
    }[req.operator]
    assert req.matches(labels) is expected


@given(_selectors, _label_sets)
def test_selector_is_a_conjunction(selector: Selector, labels: dict[str, str]) -> None:
    assert selector.matches(labels) == all(r.matches(labels) for r in selector.requirements)


def test_label_selector_model() -> None:
    model = selectors.LabelSelector.model_validate(
        {
            "matchLabels": {"tier": "gold"},
            "matchExpressions": [
                {"key": "region", "operator": "In", "values": ["eu-west", "eu-north"]},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }
    )
    assert model.matches({"tier": "gold", "region": "eu-west"})
    assert not model.matches({"tier": "gold", "region": "us-east"})
    assert not model.matches({"tier": "gold", "region": "eu-west", "legacy": "yes"})
    assert str(model.selector()) == "tier=gold,region in (eu-north,eu-west),!legacy"
    assert selectors.LabelSelector().matches({})


OBJ = {
    "metadata": {"name": "chat-0", "namespace": "team-a"},
    "spec": {"cluster": "eu-1", "nodes": [3, 4], "external": False, "replicas": 2},
    "status": {"phase": None},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("spec.cluster=eu-1", True),
        ("spec.cluster==eu-1", True),
        ("spec.cluster!=eu-1", False),
        ("spec.cluster=eu-1,metadata.name!=x", True),
        ("spec.cluster=eu-1,metadata.name=x", False),
        ("spec.replicas=2", True),
        ("spec.external=false", True),
        ("spec.nodes.1=4", True),
        ("spec.nodes.7=", True),
        ("status.phase=", True),
        ("spec.pool=", True),
        ("spec.pool!=", False),
        ("metadata.name.deeper=", True),
    ],
)
def test_field_selector_matches(text: str, expected: bool) -> None:
    assert selectors.parse_field_selector(text).matches(OBJ) is expected


@pytest.mark.parametrize("text", ["spec.cluster", "spec..cluster=x", "spec.cluster=a,", "=x"])
def test_field_selector_errors(text: str) -> None:
    with pytest.raises(errors.SelectorError):
        selectors.parse_field_selector(text)


def test_field_selector_string_form() -> None:
    text = "spec.cluster==eu-1, metadata.name!=x"
    assert str(selectors.parse_field_selector(text)) == "spec.cluster=eu-1,metadata.name!=x"
