"""Engine scheduling hints: only a namespace admin's key sets them; anyone else's are dropped."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from inferplane.api import apikeys
from inferplane.gateway import bodies
from inferplane.gateway.calls import Api, Call, parse_openai, parse_v2
from inferplane.gateway.table import KeyEntry
from inferplane.policy import quotas
from tests.unit.gateway.objects import api_key, table_of, token_hash
from tests.unit.gateway.test_bodies import ENGINE

HI = [{"role": "user", "content": "hi"}]


def key(role: apikeys.Role) -> KeyEntry:
    return KeyEntry("default", "k", quotas.Limits(), None, role)


def chat(**body: Any) -> Call:
    return parse_openai(Api.CHAT, orjson.dumps({"model": "m", "messages": HI} | body))


def test_the_table_knows_each_keys_role() -> None:
    t = table_of(
        api_key("boss", "sk-boss", role="admin"),
        api_key("dev", "sk-dev", role="deployer"),
        api_key("reader", "sk-reader"),
    )
    roles = {t.keys[token_hash(f"sk-{n}")].role for n in ("boss", "dev", "reader")}
    assert roles == {"admin", "deployer", "viewer"}
    assert t.keys[token_hash("sk-reader")].role == "viewer"


@pytest.mark.parametrize("role", ["viewer", "deployer"])
def test_a_non_admin_keys_priority_is_dropped(role: apikeys.Role) -> None:
    c = chat(priority=-10, temperature=0.5)
    bodies.clamp_hints(c, key(role))
    assert "priority" not in c.body
    assert orjson.loads(c.raw) == {"model": "m", "messages": HI, "temperature": 0.5}


def test_an_admin_keys_priority_is_kept_as_sent() -> None:
    c = chat(priority=-10)
    raw = c.raw
    bodies.clamp_hints(c, key("admin"))
    assert c.raw is raw and c.body["priority"] == -10


def test_a_body_without_hints_is_not_re_encoded() -> None:
    c = chat(temperature=0.5)
    raw = c.raw
    bodies.clamp_hints(c, key("viewer"))
    assert c.raw is raw


def test_every_listed_hint_is_dropped() -> None:
    c = chat(**dict.fromkeys(bodies.SCHEDULING_HINTS, 1))
    bodies.clamp_hints(c, key("viewer"))
    assert not set(bodies.SCHEDULING_HINTS) & set(orjson.loads(c.raw))


def test_v2_hints_are_dropped_from_parameters() -> None:
    raw = orjson.dumps({"text_input": "x", "parameters": {"priority": -5, "max_tokens": 3}})
    c = parse_v2(Api.V2_GENERATE, "m", raw)
    bodies.clamp_hints(c, key("deployer"))
    assert orjson.loads(c.raw) == {"text_input": "x", "parameters": {"max_tokens": 3}}


def test_v2_parameters_that_are_not_an_object_are_left_to_the_engine() -> None:
    c = parse_v2(Api.V2_GENERATE, "m", orjson.dumps({"text_input": "x", "parameters": 3}))
    raw = c.raw
    bodies.clamp_hints(c, key("viewer"))
    assert c.raw is raw


def test_the_upstream_body_is_built_from_the_clamped_call() -> None:
    c = chat(priority=-10, stream=True)
    bodies.clamp_hints(c, key("viewer"))
    sent = orjson.loads(bodies.upstream_body(c, ENGINE, "served"))
    assert "priority" not in sent and sent["model"] == "served"
