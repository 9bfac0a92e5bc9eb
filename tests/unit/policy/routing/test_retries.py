"""Retrying after a failure: which answers are worth it, the redraw, the limits, and that a
tried endpoint is never chosen again."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferplane.api import services
from inferplane.policy.routing import registry, retries
from inferplane.policy.routing.decisions import NoEndpoint, Routed
from inferplane.policy.routing.endpoints import EndpointState
from inferplane.policy.routing.requests import RouteRequest


def routes(*given: dict[str, object]) -> list[services.Route]:
    return [services.Route.model_validate(r) for r in given]


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_not_now_not_here_is_retryable(status: int) -> None:
    assert retries.retryable(status)


@pytest.mark.parametrize("status", [200, 400, 401, 404, 422, 500])
def test_other_answers_go_to_the_client(status: int) -> None:
    assert not retries.retryable(status)


def test_a_target_makes_one_attempt_and_a_retry_per_attempts() -> None:
    assert retries.tries(services.Retries(attempts=0)) == 1
    assert retries.tries(services.Retries()) == 3


def test_a_lone_route_is_taken_without_a_draw() -> None:
    class NoDraws(random.Random):
        def random(self) -> float:
            raise AssertionError("drew")

    (only,) = routes({"deployment": "d"})
    assert retries.draw([only], NoDraws(), set()) is only


def test_routes_found_empty_are_not_drawn_again() -> None:
    given = routes({"deployment": "a", "weight": 1000}, {"deployment": "b", "weight": 1})
    rng = random.Random(0)
    assert all(retries.draw(given, rng, {"deployment/a"}) is given[1] for _ in range(20))
    nothing = retries.draw(given, rng, {"deployment/a", "deployment/b"})
    assert isinstance(nothing, NoEndpoint)


def test_a_stream_is_resumed_while_it_may_be() -> None:
    spec = services.Retries(attempts=2)
    assert retries.may_resume(spec, resumable=True, resumes=1)
    assert not retries.may_resume(spec, resumable=True, resumes=2), "the resumes are spent"
    assert not retries.may_resume(spec, resumable=False, resumes=0), "logprobs, n > 1, V2…"
    off = services.Retries(resumeStreams=False)
    assert not retries.may_resume(off, resumable=True, resumes=0)


names = st.sampled_from([f"e{i}" for i in range(5)])
fleets = st.lists(
    st.builds(EndpointState, name=names, ready=st.booleans(), in_flight=st.integers(0, 9)),
    min_size=1,
    max_size=5,
    unique_by=lambda e: e.name,
)


@given(fleets, st.sets(names), st.sampled_from(sorted(registry.STRATEGIES)), st.integers())
def test_a_tried_endpoint_is_never_chosen_again(
    endpoints: list[EndpointState], tried: set[str], strategy: str, seed: int
) -> None:
    decision = registry.route(
        endpoints,
        RouteRequest(prompt_text="a prompt " * 40, session="s"),
        strategy=registry.make(strategy),
        rng=random.Random(seed),
        tried=tried,
    )
    usable = {e.name for e in endpoints if e.ready} - tried
    if usable:
        assert isinstance(decision, Routed) and decision.endpoint in usable
    else:
        assert isinstance(decision, NoEndpoint)
