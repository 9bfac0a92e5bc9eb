"""One table of metric names per engine and one parser: each engine's /metrics reads alike."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest
from prometheus_client import generate_latest

from inferplane.api import enginemetrics
from inferplane.api.enginemetrics import MetricNames, Reading

# What each engine answers at /metrics, cut down but in its own shape: HELP and TYPE lines,
# labels (or none), histogram buckets the reading must skip, and metrics it does not read.
VLLM_TEXT = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny"} 3.0
vllm:num_requests_waiting{engine="0",model_name="tiny"} 1.0
vllm:kv_cache_usage_perc{engine="0",model_name="tiny"} 0.25
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="tiny"} 4.0
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="tiny"} 10.0
vllm:time_to_first_token_seconds_count{model_name="tiny"} 10.0
vllm:time_to_first_token_seconds_sum{model_name="tiny"} 2.0
vllm:prompt_tokens_total{model_name="tiny"} 1000.0
vllm:generation_tokens_total{model_name="tiny"} 500.0
vllm:request_success_total{finished_reason="stop",model_name="tiny"} 6.0
vllm:request_success_total{finished_reason="length",model_name="tiny"} 4.0
vllm:request_success_created{finished_reason="stop",model_name="tiny"} 1.7e+09
"""

SGLANG_TEXT = """\
# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="Qwen/Qwen2.5-7B"} 2.0
# HELP sglang:num_queue_reqs The number of requests in the waiting queue.
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="Qwen/Qwen2.5-7B"} 5.0
# HELP sglang:token_usage The token usage.
# TYPE sglang:token_usage gauge
sglang:token_usage{model_name="Qwen/Qwen2.5-7B"} 0.5
sglang:gen_throughput{model_name="Qwen/Qwen2.5-7B"} 355.2
sglang:cache_hit_rate{model_name="Qwen/Qwen2.5-7B"} 0.01
# TYPE sglang:time_to_first_token_seconds histogram
sglang:time_to_first_token_seconds_bucket{le="0.1",model_name="Qwen/Qwen2.5-7B"} 1.0
sglang:time_to_first_token_seconds_bucket{le="+Inf",model_name="Qwen/Qwen2.5-7B"} 4.0
sglang:time_to_first_token_seconds_sum{model_name="Qwen/Qwen2.5-7B"} 1.2
sglang:time_to_first_token_seconds_count{model_name="Qwen/Qwen2.5-7B"} 4.0
sglang:prompt_tokens_total{model_name="Qwen/Qwen2.5-7B"} 8000.0
sglang:generation_tokens_total{model_name="Qwen/Qwen2.5-7B"} 2000.0
sglang:num_requests_total{model_name="Qwen/Qwen2.5-7B"} 40.0
"""

# llama-server --metrics: no labels at all.
LLAMACPP_TEXT = """\
# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 1234
# HELP llamacpp:prompt_seconds_total Prompt process time
# TYPE llamacpp:prompt_seconds_total counter
llamacpp:prompt_seconds_total 1.5
# HELP llamacpp:tokens_predicted_total Number of generation tokens processed.
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 567
llamacpp:tokens_predicted_seconds_total 8.9
llamacpp:n_decode_total 500
llamacpp:prompt_tokens_seconds 822.6
llamacpp:predicted_tokens_seconds 63.7
# HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 means 100 percent usage.
# TYPE llamacpp:kv_cache_usage_ratio gauge
llamacpp:kv_cache_usage_ratio 0.125
llamacpp:kv_cache_tokens 512
# HELP llamacpp:requests_processing Number of request processing.
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 1
# HELP llamacpp:requests_deferred Number of request deferred.
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 2
"""

TGI_TEXT = """\
# TYPE tgi_batch_current_size gauge
tgi_batch_current_size 4
tgi_queue_size 1
tgi_request_input_length_sum 300
tgi_request_input_length_count 3
tgi_request_generated_tokens_sum 90
tgi_request_success 9
"""

EXPECTED = {
    "vllm": (
        VLLM_TEXT,
        Reading(3.0, 1.0, 0.25, ttft_sum=2.0, ttft_count=10.0, prompt_tokens=1000.0,
                generation_tokens=500.0, requests=10.0),
    ),
    "sglang": (
        SGLANG_TEXT,
        Reading(2.0, 5.0, 0.5, ttft_sum=1.2, ttft_count=4.0, prompt_tokens=8000.0,
                generation_tokens=2000.0, requests=40.0),
    ),
    "llamacpp": (
        LLAMACPP_TEXT,
        Reading(1.0, 2.0, 0.125, prompt_tokens=1234.0, generation_tokens=567.0),
    ),
    "tgi": (
        TGI_TEXT,
        Reading(4.0, 1.0, 0.0, prompt_tokens=300.0, generation_tokens=90.0, requests=9.0),
    ),
}  # fmt: skip


@pytest.mark.parametrize("engine", sorted(EXPECTED))
def test_each_engines_exposition_reads_under_its_own_names(engine: str) -> None:
    text, expected = EXPECTED[engine]
    names = enginemetrics.ENGINES[engine]
    assert enginemetrics.read(enginemetrics.parse(text, names.samples), names) == expected
    # Parsing everything, or only what the names want, reads the same.
    assert enginemetrics.read(enginemetrics.parse(text), names) == expected


@pytest.mark.parametrize("engine", sorted(EXPECTED))
def test_an_engine_not_known_beforehand_is_recognised_by_its_names(engine: str) -> None:
    text, expected = EXPECTED[engine]
    assert enginemetrics.recognise(enginemetrics.parse(text)) is enginemetrics.ENGINES[engine]
    assert enginemetrics.read_any(text) == expected


def test_another_engines_names_read_as_nothing() -> None:
    names = enginemetrics.VLLM
    assert enginemetrics.read(enginemetrics.parse(SGLANG_TEXT), names) == Reading()
    assert enginemetrics.read_any("other_engine_running 7\n# HELP x\n") == Reading()
    assert enginemetrics.recognise({}) is None


def test_vllm_before_0_10_names_kv_usage_differently() -> None:
    assert enginemetrics.read_any("vllm:gpu_cache_usage_perc 0.5\n").kv_cache_usage == 0.5


def test_the_engines_prefixes_keep_recognition_unambiguous() -> None:
    prefixes = {"vllm": "vllm:", "sglang": "sglang:", "llamacpp": "llamacpp:", "tgi": "tgi_"}
    assert set(enginemetrics.ENGINES) == set(prefixes)
    for engine, names in enginemetrics.ENGINES.items():
        assert names.samples, engine
        assert all(sample.startswith(prefixes[engine]) for sample in names.samples), engine
        assert names.samples <= enginemetrics.EVERY_SAMPLE, engine


def test_parse_sums_label_sets_and_reads_tricky_lines() -> None:
    metrics = enginemetrics.parse(VLLM_TEXT)
    assert metrics["vllm:num_requests_running"] == 3.0
    assert metrics["vllm:request_success_total"] == 10.0
    tricky = (
        'x{path="/a b}c",q="say \\"hi\\""} 7 1700000000000\n'  # a `}` and spaces in labels
        "y 2\n"
        '  w{a="1"} 3\n'  # indented
        'z{a="1"} NaN\n'
        "bad\n"
        "broken{ 4\n"
        "\n"
        "#comment 5\n"
    )
    assert enginemetrics.parse(tricky) == {"x": 7.0, "y": 2.0, "w": 3.0}


def test_parse_keeps_only_the_wanted_names() -> None:
    wanted = {"vllm:num_requests_waiting", "vllm:request_success_total"}
    assert enginemetrics.parse(VLLM_TEXT, wanted) == {
        "vllm:num_requests_waiting": 1.0,
        "vllm:request_success_total": 10.0,
    }


def test_a_histograms_samples_are_its_sum_and_count() -> None:
    names = MetricNames(running=("r",), ttft_histogram=("h",))
    assert names.samples == {"r", "h_sum", "h_count"}


def test_the_reference_engine_serves_vllms_names() -> None:
    """Rendered by the reference engine's own Metrics, its /metrics reads as vLLM's."""
    from inferplane.engine.async_engine import AsyncEngine, EngineStats
    from inferplane.engine.server import metrics

    stats = EngineStats(num_running=3, num_waiting=2, kv_cache_usage=0.75)
    cache = {"block_size": 16, "enable_prefix_caching": True}
    fake = SimpleNamespace(
        stats=stats,
        # The KV-cache facts Metrics labels cache_config_info with, in both places it has
        # read them from (the engine's info; before that, its config and blocks).
        info=SimpleNamespace(**cache, num_blocks=64),
        engine=SimpleNamespace(
            config=SimpleNamespace(**cache), blocks=SimpleNamespace(num_blocks=64)
        ),
    )
    served = metrics.Metrics(cast(AsyncEngine, fake), "tiny", clock=lambda: 0.0)
    served.ttft.observe(0.5)
    served.tpot.observe(0.02)
    served.prompt_tokens.inc(10)
    served.generation_tokens.inc(4)
    served.request_success.inc("stop")
    text = generate_latest(served.registry).decode()
    assert enginemetrics.recognise(enginemetrics.parse(text)) is enginemetrics.VLLM
    assert enginemetrics.read_any(text) == Reading(
        3.0, 2.0, 0.75, ttft_sum=0.5, ttft_count=1.0, tpot_sum=0.02, tpot_count=1.0,
        prompt_tokens=10.0,
        generation_tokens=4.0, requests=1.0,
    )  # fmt: skip
