"""The agent's engine tokens: asked for once the control plane issued one, kept in memory,
asked again only after a backoff when the control plane could not answer."""

from __future__ import annotations

from typing import Any

import pytest

from inferplane import client as api_client
from inferplane.agent import tokens
from tests.unit import fake_resource_api as fake

UID = "0b6f2a4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
NAME = f"engine-{UID}"


def replica(issued: str | None = NAME) -> dict[str, Any]:
    status = {"engineTokenSecret": issued} if issued else {}
    return {"metadata": {"name": "r", "namespace": "ns", "uid": UID}, "status": status}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def keeper(api: fake.FakeResourceApi, clock: Clock) -> tokens.EngineTokens:
    return tokens.EngineTokens(
        lambda: api_client.Client(fake.SERVER, fake.TOKEN, transport=api.transport), ticks=clock
    )


def reveals(api: fake.FakeResourceApi) -> int:
    return sum(1 for r in api.requests if r.url.path.endswith("/reveal"))


def test_no_token_is_asked_for_before_it_is_issued_or_under_another_name() -> None:
    api, clock = fake.FakeResourceApi(), Clock()
    held = keeper(api, clock)
    for obj in (replica(None), replica("engine-someone-elses")):
        with pytest.raises(tokens.TokenUnavailable, match="issue"):
            held.token_for(obj)
    assert reveals(api) == 0


def test_a_token_is_revealed_once_and_kept_in_memory() -> None:
    api, clock = fake.FakeResourceApi(), Clock()
    api.revealed[("inferplane-system", NAME)] = {"token": "tok-1"}
    held = keeper(api, clock)
    assert held.held(replica()) is None
    assert held.token_for(replica()) == "tok-1"
    assert held.token_for(replica()) == "tok-1"
    assert held.held(replica()) == "tok-1"
    assert reveals(api) == 1
    held.keep_only([])
    assert held.held(replica()) is None


def test_a_failed_reveal_is_tried_again_only_after_a_backoff() -> None:
    api, clock = fake.FakeResourceApi(), Clock()
    held = keeper(api, clock)
    with pytest.raises(tokens.TokenUnavailable, match="could not be read"):
        held.token_for(replica())  # 404: not there (yet)
    with pytest.raises(tokens.TokenUnavailable, match="retrying"):
        held.token_for(replica())
    assert reveals(api) == 1
    api.revealed[("inferplane-system", NAME)] = {"token": "tok-1"}
    clock.now += tokens.RETRY.delay(1)
    assert held.token_for(replica()) == "tok-1"
