"""Load from /metrics: gauges as read, counters and histograms as rates between scrapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from inferplane.agent import load, recipes
from inferplane.api import enginemetrics
from tests.unit.api.test_enginemetrics import VLLM_TEXT

# What the reference engine (and vLLM) answer at /metrics, cut down: one page for every test.

LATER_TEXT = """\
vllm:num_requests_running{model_name="tiny"} 3.0
vllm:num_requests_waiting{model_name="tiny"} 1.0
vllm:kv_cache_usage_perc{model_name="tiny"} 0.25
vllm:time_to_first_token_seconds_count{model_name="tiny"} 14.0
vllm:time_to_first_token_seconds_sum{model_name="tiny"} 3.0
vllm:prompt_tokens_total{model_name="tiny"} 1400.0
vllm:generation_tokens_total{model_name="tiny"} 700.0
vllm:request_success_total{finished_reason="stop",model_name="tiny"} 10.0
vllm:request_success_total{finished_reason="length",model_name="tiny"} 4.0
"""

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_the_first_scrape_gives_the_gauges() -> None:
    sample = load.sample(VLLM_TEXT, enginemetrics.VLLM, at=0.0, observed=T0)
    first = load.load_between(None, sample)
    assert (first.running, first.waiting, first.kvCacheUsage) == (3, 1, 0.25)
    assert first.ttftSeconds is None and first.generationTokensPerSecond == 0.0
    assert first.observedTime == T0


def test_two_scrapes_give_rates_and_the_mean_ttft_between_them() -> None:
    names = recipes.RECIPES["vllm"].metrics
    before = load.sample(VLLM_TEXT, names, at=100.0, observed=T0)
    after = load.sample(LATER_TEXT, names, at=104.0, observed=T0)
    measured = load.load_between(before, after)
    assert measured.ttftSeconds == pytest.approx(0.25)  # 1 s over 4 first tokens
    assert measured.promptTokensPerSecond == pytest.approx(100.0)
    assert measured.generationTokensPerSecond == pytest.approx(50.0)
    assert measured.requestsPerSecond == pytest.approx(1.0)
    assert measured.tpotSeconds is None, "neither page has the TPOT histogram"


def test_the_mean_tpot_between_two_scrapes() -> None:
    names = recipes.RECIPES["vllm"].metrics
    tpot = 'vllm:time_per_output_token_seconds_{}{{model_name="tiny"}} {}\n'
    before_text = tpot.format("count", 100) + tpot.format("sum", 2.0)
    after_text = tpot.format("count", 300) + tpot.format("sum", 6.0)
    before = load.sample(before_text, names, at=100.0, observed=T0)
    after = load.sample(after_text, names, at=104.0, observed=T0)
    assert load.load_between(before, after).tpotSeconds == pytest.approx(0.02)


def test_a_restarted_engine_resets_its_counters_without_negative_rates() -> None:
    names = recipes.RECIPES["vllm"].metrics
    before = load.sample(LATER_TEXT, names, at=100.0, observed=T0)
    after = load.sample(VLLM_TEXT, names, at=110.0, observed=T0)
    measured = load.load_between(before, after)
    assert measured.promptTokensPerSecond == pytest.approx(100.0)  # 1000 since the reset
    assert measured.requestsPerSecond >= 0.0


def test_other_engines_names_map_through_their_recipes() -> None:
    text = "sglang:num_running_reqs 2\nsglang:num_queue_reqs 5\nsglang:token_usage 0.5\n"
    sglang = recipes.RECIPES["sglang"].metrics
    measured = load.load_between(None, load.sample(text, sglang, at=0.0, observed=T0))
    assert (measured.running, measured.waiting, measured.kvCacheUsage) == (2, 5, 0.5)
    missing = load.sample("", recipes.RECIPES["tgi"].metrics, at=0.0, observed=T0)
    assert load.load_between(None, missing).running == 0


def test_every_recipe_reads_by_a_table_of_the_one_module() -> None:
    tables = list(enginemetrics.ENGINES.values())
    assert all(any(r.metrics is t for t in tables) for r in recipes.RECIPES.values())
    assert recipes.RECIPES["reference"].metrics is enginemetrics.VLLM
    assert recipes.RECIPES["llamacpp"].metrics is enginemetrics.LLAMACPP


def test_usage_over_one_is_clamped_and_counts_are_rounded() -> None:
    text = "vllm:num_requests_running 2.6\nvllm:kv_cache_usage_perc 1.5\n"
    sample = load.sample(text, enginemetrics.VLLM, at=0.0, observed=T0)
    measured = load.load_between(None, sample)
    assert (measured.running, measured.kvCacheUsage) == (3, 1.0)
