"""Issue 11's gateway drills, as an operator ran them, now refused as OpenAI refuses them:
`n: 1000`, `max_tokens` as a string or a boolean, a user message with null content, a
`text/plain` body, and a tenant's key setting the engine's scheduling `priority`.

A real gateway process in front of a recording stub upstream and a reference engine, called
with the official `openai` client (and raw httpx where a client would not send the body).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.support import tiny_model
from tests.support.engine_process import EngineProcess, running_engine
from tests.support.gateway_process import (
    GatewayProcess,
    StubProcess,
    api_key,
    endpoint,
    service,
)

pytestmark = pytest.mark.integration

VIEWER, DEPLOYER, ADMIN = "sk-drill-viewer", "sk-drill-deployer", "sk-drill-admin"
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubProcess]:
    process = StubProcess(tmp_path_factory.mktemp("drill-stub"), "a").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    work = tmp_path_factory.mktemp("drill-engine")
    folder = tiny_model.make_tiny_model(work / "tiny")
    with running_engine(str(folder), work / "engine.log", "--kv-cache-memory", "8MiB") as e:
        yield e


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, stub: StubProcess, engine: EngineProcess
) -> Iterator[GatewayProcess]:
    config = [
        service("chat", [{"deployment": "d"}]),
        endpoint("a-0", stub.url, "d"),
        service("tiny", [{"deployment": "t"}]),
        endpoint("t-0", engine.url, "t"),
        api_key("viewer", VIEWER),
        api_key("deployer", DEPLOYER, role="deployer"),
        api_key("admin", ADMIN, role="admin"),
    ]
    process = GatewayProcess(tmp_path_factory.mktemp("drill-gateway"), config=config).start()
    yield process
    process.stop()


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=VIEWER, max_retries=0) as c:
        yield c


def refused(client: openai.OpenAI, **request: Any) -> dict[str, Any]:
    """The OpenAI error of a chat request the gateway must refuse with a 400."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="chat", **request)
    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict) and body["message"] and body["type"] == "invalid_request_error"
    return body


def test_n_above_128_is_refused_naming_n(client: openai.OpenAI) -> None:
    error = refused(client, messages=HI, n=1000)
    assert error["param"] == "n"
    assert "maximum of 128" in error["message"]


def test_n_choices_reach_the_engine_and_come_back(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="tiny", messages=HI, n=3, max_tokens=2)
    assert sorted(c.index for c in answer.choices) == [0, 1, 2]


def test_n_choices_stream_back(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="tiny", messages=HI, n=2, max_tokens=2, stream=True
    )
    indices = {choice.index for chunk in stream for choice in chunk.choices}
    assert indices == {0, 1}


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", ["32", True, 0])
def test_token_bounds_are_integers_not_coerced(
    client: openai.OpenAI, field: str, value: object
) -> None:
    error = refused(client, messages=HI, extra_body={field: value})
    assert error["param"] == field


def test_a_user_message_with_null_content_is_refused(client: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": None}]
    error = refused(client, messages=messages)
    assert error["param"] == "messages.[1].content"


def test_an_assistant_tool_call_turn_may_have_null_content(
    client: openai.OpenAI, stub: StubProcess
) -> None:
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    messages: list[Any] = [
        *HI,
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    answer = client.chat.completions.create(model="chat", messages=messages)
    assert answer.choices[0].message.content == "answer from a"
    assert stub.stats()["last_body"]["messages"][1]["tool_calls"] == calls


def test_a_text_plain_body_is_refused(gateway: GatewayProcess) -> None:
    with gateway.http(VIEWER) as http:
        response = http.post(
            "/v1/chat/completions",
            content=b'{"model": "chat", "messages": [{"role": "user", "content": "hi"}]}',
            headers={"content-type": "text/plain"},
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Content-Type"


def test_a_json_body_without_a_content_type_is_served(gateway: GatewayProcess) -> None:
    with gateway.http(VIEWER) as http:
        response = http.post(
            "/v1/chat/completions",
            content=b'{"model": "chat", "messages": [{"role": "user", "content": "hi"}]}',
        )
    assert "content-type" not in response.request.headers
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("token", [VIEWER, DEPLOYER])
def test_a_tenant_keys_priority_does_not_reach_the_upstream(
    gateway: GatewayProcess, stub: StubProcess, token: str
) -> None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0) as c:
        c.chat.completions.create(
            model="chat", messages=HI, temperature=0.5, extra_body={"priority": -100}
        )
    sent = stub.stats()["last_body"]
    assert "priority" not in sent
    assert sent["temperature"] == 0.5, "the rest of the body is the client's"


def test_an_admin_keys_priority_reaches_the_upstream(
    gateway: GatewayProcess, stub: StubProcess
) -> None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ADMIN, max_retries=0) as c:
        c.chat.completions.create(model="chat", messages=HI, extra_body={"priority": -100})
    assert stub.stats()["last_body"]["priority"] == -100


def test_a_tenant_keys_priority_is_dropped_on_a_stream_too(
    gateway: GatewayProcess, stub: StubProcess
) -> None:
    with httpx.Client(timeout=30) as http:
        response = http.post(
            f"{gateway.url}/v1/completions",
            json={"model": "chat", "prompt": "x", "stream": True, "priority": -1},
            headers={"Authorization": f"Bearer {VIEWER}"},
        )
    assert response.status_code == 200 and "[DONE]" in response.text
    sent = stub.stats()["last_body"]
    assert "priority" not in sent and sent["stream_options"] == {"include_usage": True}
