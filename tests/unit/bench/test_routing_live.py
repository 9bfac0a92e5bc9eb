"""The routing bench's pure parts: seeded workloads, engine counters and the figures made of
them, and the shim's rewrite of sglang-router's requests."""

from __future__ import annotations

import json
import random

import pytest
from bench.routing import counters, report, shim, workloads

SHAPE = workloads.Shape(seed=7, requests=50, rate=5.0, groups=4, prefix_words=40)


def test_a_workload_is_the_same_for_the_same_seed_and_salt() -> None:
    for kind in workloads.KINDS:
        assert workloads.build(kind, SHAPE, salt="a") == workloads.build(kind, SHAPE, salt="a")


def test_a_salt_changes_the_words_not_the_shape() -> None:
    a = workloads.build(workloads.SHARED, SHAPE, salt="round-robin")
    b = workloads.build(workloads.SHARED, SHAPE, salt="prefix-aware")
    assert [(r.at, r.group) for r in a.requests] == [(r.at, r.group) for r in b.requests]
    assert not {r.system for r in a.requests} & {r.system for r in b.requests}


def test_groups_share_their_system_prompt_and_nothing_else() -> None:
    shared = workloads.build(workloads.SHARED, SHAPE, salt="x")
    prompts: dict[int, set[str]] = {}
    for request in shared.requests:
        prompts.setdefault(request.group, set()).add(request.system)
    assert sorted(prompts) == list(range(SHAPE.groups))
    assert all(len(p) == 1 for p in prompts.values())
    assert len({r.user for r in shared.requests}) == SHAPE.requests
    unique = workloads.build(workloads.UNIQUE, SHAPE, salt="x")
    assert len({r.system for r in unique.requests}) == SHAPE.requests
    hot = workloads.build(workloads.HOT, SHAPE, salt="x")
    assert len({r.system for r in hot.requests}) == 1
    assert len(hot.requests) == 10 * SHAPE.hot_concurrency  # at least 10 rounds of it
    assert hot.concurrency == SHAPE.hot_concurrency and shared.concurrency == 0


def test_arrivals_are_poisson_at_the_rate() -> None:
    times = workloads.poisson_times(random.Random(0), 4000, 8.0)
    assert times[0] == 0 and times == sorted(times)
    assert times[-1] / len(times) == pytest.approx(1 / 8.0, rel=0.05)
    with pytest.raises(ValueError, match="rate"):
        workloads.poisson_times(random.Random(0), 1, 0)


METRICS = """# HELP vllm:prefix_cache_queries_total Prefix-cache queries, in tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{model_name="demo"} 2391.0
vllm:prefix_cache_hits_total{model_name="demo"} 1600.0
vllm:num_requests_running{model_name="demo"} 3.0
vllm:num_requests_waiting{model_name="demo"} 2.0
vllm:kv_cache_usage_perc{model_name="demo"} 0.5
vllm:prompt_tokens_total{model_name="demo"} 9999.0
"""


def test_engine_counters_parse_from_prometheus_text() -> None:
    parsed = counters.parse(METRICS)
    assert parsed == counters.EngineCounters(queries=2391, hits=1600, running=3, waiting=2)
    assert parsed.load == 5


def test_hit_rate_is_the_summed_deltas_over_engines() -> None:
    before = [counters.EngineCounters(100, 50), counters.EngineCounters(0, 0)]
    after = [counters.EngineCounters(300, 200), counters.EngineCounters(200, 10)]
    rate = counters.hit_rate(before, after)
    assert (rate.hits, rate.queries) == (160, 400)
    assert rate.rate == pytest.approx(0.4)
    assert counters.hit_rate(before, before).rate == 0.0
    with pytest.raises(ValueError, match="engine 1"):
        counters.hit_rate(after, [after[0], before[1]])


def test_balance_is_the_busiest_replicas_mean_over_the_mean() -> None:
    spread = counters.balance([[4, 2, 2, 0], [6, 2, 2, 2], [0, 0, 0, 0]])
    assert spread.means == pytest.approx((10 / 3, 4 / 3, 4 / 3, 2 / 3))
    assert spread.ratio == pytest.approx((10 / 3) / (20 / 12))
    assert spread.sample_p90 == pytest.approx(2.0)  # the idle sample is left out
    assert counters.balance([]).ratio == 0.0


def test_replicas_per_group() -> None:
    served = [(0, "e0"), (0, "e0"), (0, "e1"), (1, "e2"), (-1, "e3")]
    assert report.replicas_per_group(served) == 1.5
    assert report.replicas_per_group([(0, "e0"), (1, "")]) == 0.0


def test_the_shim_drops_only_sglangs_no_op_fields() -> None:
    body = {
        "model": "demo",
        "max_completion_tokens": 4,
        "no_stop_trim": False,
        "separate_reasoning": True,
        "stream_reasoning": True,
        "return_hidden_states": False,
        "skip_special_tokens": True,
    }
    stripped = json.loads(shim.strip(json.dumps(body).encode()))
    assert stripped == {"model": "demo", "max_completion_tokens": 4, "skip_special_tokens": True}
    asks = json.dumps({"model": "demo", "return_hidden_states": True}).encode()
    assert shim.strip(asks) == asks
    assert shim.strip(b"not json") == b"not json"


def test_the_shim_rewrites_the_request_head() -> None:
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 300\r\n\r\n"
    assert shim.content_length(head) == 300
    assert shim.rewrite_head(head, 12) == (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
        b"Content-Length: 12\r\nConnection: close\r\n\r\n"
    )


def test_the_shim_names_the_replica_in_the_answer() -> None:
    start = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    assert shim.tag(start, "e2") == (
        b"HTTP/1.1 200 OK\r\nx-inferplane-endpoint: e2\r\ncontent-type: text/event-stream\r\n"
    )
